"""``reminders ses setup`` and ``reminders ses check``: SES the way a production-access
reviewer expects it (DESIGN §10).

``setup`` is idempotent: it reads before it writes, creates what is missing, converges
what differs, and a second run changes nothing. ``check`` is the preflight: one line per
control of the SES production checklist with pass / warn / fail; a failed *required*
control makes the command exit 1.

Every AWS answer is handled the same way, whatever the peer: an API error (including an
operation the peer does not implement) is a failed step or a failed check line, never a
crash and never a special case.

References:
- https://docs.aws.amazon.com/ses/latest/dg/request-production-access.html
- https://docs.aws.amazon.com/ses/latest/dg/event-publishing-add-event-destination-sns.html
- https://docs.aws.amazon.com/ses/latest/dg/sending-email-suppression-list.html
- https://docs.aws.amazon.com/ses/latest/dg/reputationdashboard-cloudwatch-alarm.html
- https://docs.aws.amazon.com/ses/latest/dg/faqs-enforcement.html (review at 5 % bounces,
  0.1 % complaints)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scheduler.delivery.ramp_policy import Quota
from scheduler.delivery.ses import make_aws_client
from scheduler.errors import PeerError

log = logging.getLogger(__name__)

CONFIGURATION_SET = "timeplan-transactional"
EVENT_TOPIC = "timeplan-ses-events"
ALARM_TOPIC = "timeplan-ses-alarms"
EVENT_DESTINATION = "timeplan-events-sns"
EVENT_TYPES = frozenset(
    {
        "SEND",
        "REJECT",
        "BOUNCE",
        "COMPLAINT",
        "DELIVERY",
        "DELIVERY_DELAY",
        "RENDERING_FAILURE",
        "SUBSCRIPTION",
    }
)
SUPPRESSED_REASONS = ("BOUNCE", "COMPLAINT")
DKIM_KEY_LENGTH = "RSA_2048_BIT"
SANDBOX_DAILY_QUOTA = 200.0


@dataclass(frozen=True)
class SesClients:
    sesv2: Any
    sns: Any
    cloudwatch: Any

    @classmethod
    def create(cls, region: str, endpoint_url: str | None = None) -> SesClients:
        return cls(
            *(make_aws_client(s, region, endpoint_url) for s in ("sesv2", "sns", "cloudwatch"))
        )


class AwsCallFailed(PeerError):
    """An AWS API call failed; ``code`` is AWS's error code (or the botocore error name)."""

    def __init__(self, operation: str, code: str, detail: str) -> None:
        super().__init__(f"{operation} failed: {code}: {detail}".rstrip(": "))
        self.operation = operation
        self.code = code


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        code = str(
            info.get("Code")
            or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "error")
        )
        raise AwsCallFailed(operation, code, str(info.get("Message", ""))[:200]) from None
    except BotoCoreError as error:
        raise AwsCallFailed(operation, type(error).__name__, str(error)[:200]) from None


def read_quota(client: Any) -> Quota | None:
    """SES's sending quota for the ramp's ceiling; None when it cannot be read."""
    try:
        with aws_call("GetAccount"):
            quota = client.get_account()["SendQuota"]
        return Quota.from_send_quota(quota)
    except (AwsCallFailed, KeyError, ValueError) as error:
        log.warning("cannot read the SES sending quota: %s", error)
        return None


# --- setup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    action: str  # created | updated | unchanged | ensured


@dataclass
class SetupReport:
    event_topic_arn: str = ""
    alarm_topic_arn: str = ""
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    metric: str
    threshold: float
    statistic: str
    description: str
    comparison: str = "GreaterThanOrEqualToThreshold"
    period: int = 3600


# Review thresholds are SES's; the early warnings sit well inside them so there is time to
# act (the ramp holds and cuts on much smaller numbers, DESIGN §9).
ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        "timeplan-ses-bounce-rate-review",
        "Reputation.BounceRate",
        0.05,
        "Maximum",
        "SES bounce rate at the 5% account-review threshold",
    ),
    AlarmSpec(
        "timeplan-ses-bounce-rate-warning",
        "Reputation.BounceRate",
        0.02,
        "Maximum",
        "SES bounce rate above 2%: find the source before SES reviews the account",
    ),
    AlarmSpec(
        "timeplan-ses-complaint-rate-review",
        "Reputation.ComplaintRate",
        0.001,
        "Maximum",
        "SES complaint rate at the 0.1% account-review threshold",
    ),
    AlarmSpec(
        "timeplan-ses-complaint-rate-warning",
        "Reputation.ComplaintRate",
        0.0005,
        "Maximum",
        "SES complaint rate above 0.05%",
    ),
    AlarmSpec(
        "timeplan-ses-rejects",
        "Reject",
        1,
        "Sum",
        "SES rejected a message (virus or content): reminders never carry attachments",
    ),
    AlarmSpec(
        "timeplan-ses-rendering-failures",
        "RenderingFailure",
        1,
        "Sum",
        "SES could not render a message",
    ),
)
DELIVERY_ANOMALY_ALARM = "timeplan-ses-delivery-anomaly"


def setup(
    clients: SesClients,
    *,
    configuration_set: str = CONFIGURATION_SET,
    event_topic_arn: str | None = None,
) -> SetupReport:
    """Create or converge everything; safe to run any number of times."""
    report = SetupReport()
    report.event_topic_arn = event_topic_arn or _ensure_topic(clients.sns, EVENT_TOPIC, report)
    report.alarm_topic_arn = _ensure_topic(clients.sns, ALARM_TOPIC, report)
    _ensure_configuration_set(clients.sesv2, configuration_set, report)
    _ensure_event_destination(clients.sesv2, configuration_set, report.event_topic_arn, report)
    with aws_call("PutAccountSuppressionAttributes"):
        clients.sesv2.put_account_suppression_attributes(SuppressedReasons=list(SUPPRESSED_REASONS))
    report.steps.append(Step("account suppression list: BOUNCE, COMPLAINT", "ensured"))
    _ensure_alarms(clients.cloudwatch, report.alarm_topic_arn, report)
    return report


def _ensure_topic(sns: Any, name: str, report: SetupReport) -> str:
    with aws_call("CreateTopic"):  # idempotent: returns the existing topic's ARN
        arn = str(sns.create_topic(Name=name)["TopicArn"])
    # SHA256 signatures (version 1 is SHA1; we verify both but ask for the stronger).
    # Setting it is idempotent, and some peers do not echo the attribute back.
    with aws_call("SetTopicAttributes"):
        sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    report.steps.append(Step(f"SNS topic {name} (SignatureVersion 2)", "ensured"))
    return arn


def _configuration_set_names(sesv2: Any) -> set[str]:
    names: set[str] = set()
    token: str | None = None
    while True:
        with aws_call("ListConfigurationSets"):
            page = sesv2.list_configuration_sets(**({"NextToken": token} if token else {}))
        names.update(page.get("ConfigurationSets", []))
        token = page.get("NextToken")
        if not token:
            return names


_WANTED_OPTIONS: Mapping[str, Any] = {
    "ReputationOptions": {"ReputationMetricsEnabled": True},
    "SuppressionOptions": {"SuppressedReasons": list(SUPPRESSED_REASONS)},
    "DeliveryOptions": {"TlsPolicy": "REQUIRE"},
    "SendingOptions": {"SendingEnabled": True},
}


def _options_differ(current: Mapping[str, Any]) -> list[str]:
    reputation = current.get("ReputationOptions") or {}
    suppression = current.get("SuppressionOptions") or {}
    delivery = current.get("DeliveryOptions") or {}
    wrong = []
    if reputation.get("ReputationMetricsEnabled") is not True:
        wrong.append("ReputationOptions")
    if set(suppression.get("SuppressedReasons") or ()) != set(SUPPRESSED_REASONS):
        wrong.append("SuppressionOptions")
    if delivery.get("TlsPolicy") != "REQUIRE":
        wrong.append("DeliveryOptions")
    # SendingOptions are left alone on an existing set: a paused set was paused by an
    # operator (or for a reason); setup must not resume it behind their back. ``check``
    # reports it.
    return wrong


def _ensure_configuration_set(sesv2: Any, name: str, report: SetupReport) -> None:
    if name not in _configuration_set_names(sesv2):
        with aws_call("CreateConfigurationSet"):
            sesv2.create_configuration_set(ConfigurationSetName=name, **_WANTED_OPTIONS)
        report.steps.append(Step(f"configuration set {name}", "created"))
        return
    with aws_call("GetConfigurationSet"):
        current = sesv2.get_configuration_set(ConfigurationSetName=name)
    wrong = _options_differ(current)
    putters: Mapping[str, Callable[[], Any]] = {
        "ReputationOptions": lambda: sesv2.put_configuration_set_reputation_options(
            ConfigurationSetName=name, ReputationMetricsEnabled=True
        ),
        "SuppressionOptions": lambda: sesv2.put_configuration_set_suppression_options(
            ConfigurationSetName=name, SuppressedReasons=list(SUPPRESSED_REASONS)
        ),
        "DeliveryOptions": lambda: sesv2.put_configuration_set_delivery_options(
            ConfigurationSetName=name, TlsPolicy="REQUIRE"
        ),
    }
    for option in wrong:
        with aws_call(f"PutConfigurationSet{option}"):
            putters[option]()
    report.steps.append(
        Step(
            f"configuration set {name}" + (f" ({', '.join(wrong)})" if wrong else ""),
            "updated" if wrong else "unchanged",
        )
    )


def _event_destinations(sesv2: Any, name: str) -> list[dict[str, Any]]:
    with aws_call("GetConfigurationSetEventDestinations"):
        found = sesv2.get_configuration_set_event_destinations(ConfigurationSetName=name)
    destinations: list[dict[str, Any]] = found.get("EventDestinations", [])
    return destinations


def _ensure_event_destination(sesv2: Any, name: str, topic_arn: str, report: SetupReport) -> None:
    wanted = {
        "Enabled": True,
        "MatchingEventTypes": sorted(EVENT_TYPES),
        "SnsDestination": {"TopicArn": topic_arn},
    }
    existing = {d.get("Name"): d for d in _event_destinations(sesv2, name)}
    current = existing.get(EVENT_DESTINATION)
    label = f"event destination {EVENT_DESTINATION} → SNS"
    if current is None:
        with aws_call("CreateConfigurationSetEventDestination"):
            sesv2.create_configuration_set_event_destination(
                ConfigurationSetName=name,
                EventDestinationName=EVENT_DESTINATION,
                EventDestination=wanted,
            )
        report.steps.append(Step(label, "created"))
        return
    same = (
        current.get("Enabled") is True
        and set(current.get("MatchingEventTypes", ())) == EVENT_TYPES
        and (current.get("SnsDestination") or {}).get("TopicArn") == topic_arn
    )
    if not same:
        with aws_call("UpdateConfigurationSetEventDestination"):
            sesv2.update_configuration_set_event_destination(
                ConfigurationSetName=name,
                EventDestinationName=EVENT_DESTINATION,
                EventDestination=wanted,
            )
    report.steps.append(Step(label, "unchanged" if same else "updated"))


def _ensure_alarms(cloudwatch: Any, topic_arn: str, report: SetupReport) -> None:
    # PutMetricAlarm replaces an alarm of the same name: running it again is idempotent.
    for alarm in ALARMS:
        with aws_call("PutMetricAlarm"):
            cloudwatch.put_metric_alarm(
                AlarmName=alarm.name,
                AlarmDescription=alarm.description,
                Namespace="AWS/SES",
                MetricName=alarm.metric,
                Statistic=alarm.statistic,
                Period=alarm.period,
                EvaluationPeriods=1,
                Threshold=alarm.threshold,
                ComparisonOperator=alarm.comparison,
                TreatMissingData="notBreaching",
                AlarmActions=[topic_arn],
            )
    # Deliveries far below their usual level (anomaly band of 2 standard deviations)
    # catch what no rate shows: a paused stream, a broken worker, a blocked domain.
    with aws_call("PutMetricAlarm"):
        cloudwatch.put_metric_alarm(
            AlarmName=DELIVERY_ANOMALY_ALARM,
            AlarmDescription="SES deliveries fell below their expected band",
            ComparisonOperator="LessThanLowerThreshold",
            EvaluationPeriods=3,
            ThresholdMetricId="band",
            TreatMissingData="breaching",
            AlarmActions=[topic_arn],
            Metrics=[
                {
                    "Id": "deliveries",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/SES", "MetricName": "Delivery"},
                        "Period": 3600,
                        "Stat": "Sum",
                    },
                },
                {
                    "Id": "band",
                    "Expression": "ANOMALY_DETECTION_BAND(deliveries, 2)",
                    "ReturnData": True,
                },
            ],
        )
    report.steps.append(Step(f"{len(ALARMS) + 1} CloudWatch alarms → {ALARM_TOPIC}", "ensured"))
