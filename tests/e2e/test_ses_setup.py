"""``reminders ses setup`` and ``reminders ses check`` against a test peer.

The peer is moto's real server over HTTP for everything moto implements (SNS topics,
CloudWatch alarms, SES v2 identities and configuration sets), and ``botocore.stub.Stubber``
for the SES v2 operations moto does not implement (it answers HTTP 404 for them):
``GetAccount``, ``PutAccountSuppressionAttributes`` and the configuration-set event
destination calls. :class:`PartlyStubbed` routes each operation to one or the other; the
production code sees one ordinary client and has no idea which answered.

One moto bug is corrected on moto's side: its ``GetConfigurationSet`` answers
``SendingEnabled: false`` for a set created with ``SendingOptions={"SendingEnabled": true}``
(``moto/ses/models.py`` stores the whole ``SendingOptions`` dict as the flag).
:func:`fix_moto_sending_flag` sets the flag in moto's in-process backend after setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from scheduler.delivery.ramp_policy import Quota
from scheduler.delivery.ses import make_aws_client
from scheduler.delivery.ses_preflight import Status, check
from scheduler.delivery.ses_setup import (
    ALARM_TOPIC,
    CONFIGURATION_SET,
    EVENT_DESTINATION,
    EVENT_TOPIC,
    EVENT_TYPES,
    SesClients,
    read_quota,
    setup,
)
from tests.moto_server import MOTO_REGION

DOMAIN = "timeplanpush.com"
STUBBED = frozenset(
    {
        "get_account",
        "put_account_suppression_attributes",
        "get_configuration_set_event_destinations",
        "create_configuration_set_event_destination",
        "update_configuration_set_event_destination",
        "put_configuration_set_reputation_options",
        "put_configuration_set_suppression_options",
        "put_configuration_set_delivery_options",
    }
)
ACCOUNT = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 12.0},
    "SendingEnabled": True,
    "ProductionAccessEnabled": True,
    "EnforcementStatus": "HEALTHY",
    "DedicatedIpAutoWarmupEnabled": False,
    "SuppressionAttributes": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
}


class PartlyStubbed:
    """One SES v2 client: moto answers what it implements, a Stubber answers the rest."""

    def __init__(self, real: Any, stubbed: Any) -> None:
        self.real = real
        self.stubbed = stubbed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stubbed if name in STUBBED else self.real, name)


class Peer:
    def __init__(self, base_url: str) -> None:
        self.stubbed_client = make_aws_client("sesv2", MOTO_REGION, base_url)
        self.stubber = Stubber(self.stubbed_client)
        self.clients = SesClients(
            sesv2=PartlyStubbed(
                make_aws_client("sesv2", MOTO_REGION, base_url), self.stubbed_client
            ),
            sns=make_aws_client("sns", MOTO_REGION, base_url),
            cloudwatch=make_aws_client("cloudwatch", MOTO_REGION, base_url),
        )

    def topic_arn(self, name: str) -> str:
        return f"arn:aws:sns:{MOTO_REGION}:123456789012:{name}"

    def destination(self) -> dict[str, Any]:
        return {
            "Name": EVENT_DESTINATION,
            "Enabled": True,
            "MatchingEventTypes": sorted(EVENT_TYPES),
            "SnsDestination": {"TopicArn": self.topic_arn(EVENT_TOPIC)},
        }

    def expect_first_setup(self) -> None:
        s = self.stubber
        s.add_response(
            "get_configuration_set_event_destinations",
            {"EventDestinations": []},
            {"ConfigurationSetName": CONFIGURATION_SET},
        )
        wanted = {k: v for k, v in self.destination().items() if k != "Name"}
        s.add_response(
            "create_configuration_set_event_destination",
            {},
            {
                "ConfigurationSetName": CONFIGURATION_SET,
                "EventDestinationName": EVENT_DESTINATION,
                "EventDestination": wanted,
            },
        )
        s.add_response(
            "put_account_suppression_attributes", {}, {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}
        )

    def expect_second_setup(self) -> None:
        self.stubber.add_response(
            "get_configuration_set_event_destinations", {"EventDestinations": [self.destination()]}
        )
        self.stubber.add_response("put_account_suppression_attributes", {})

    def expect_check(self, account: dict[str, Any] | None = None) -> None:
        self.stubber.add_response(
            "get_configuration_set_event_destinations", {"EventDestinations": [self.destination()]}
        )
        self.stubber.add_response("get_account", account or ACCOUNT)

    def create_identity(self) -> None:
        self.clients.sesv2.create_email_identity(
            EmailIdentity=DOMAIN, DkimSigningAttributes={"NextSigningKeyLength": "RSA_2048_BIT"}
        )


def fix_moto_sending_flag() -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    config_set = ses_backends[DEFAULT_ACCOUNT_ID][MOTO_REGION].config_sets[CONFIGURATION_SET]
    if isinstance(config_set.enabled, dict):
        config_set.enabled = config_set.enabled.get("SendingEnabled", True)


@pytest.fixture
def peer(moto_reset: str) -> Iterator[Peer]:
    peer = Peer(moto_reset)
    with peer.stubber:
        yield peer
        peer.stubber.assert_no_pending_responses()


def test_setup_creates_everything_and_a_second_run_changes_nothing(peer: Peer) -> None:
    peer.expect_first_setup()
    first = setup(peer.clients)
    fix_moto_sending_flag()
    assert {s.action for s in first.steps if "configuration set" in s.name} == {"created"}
    assert first.event_topic_arn == peer.topic_arn(EVENT_TOPIC)
    assert first.alarm_topic_arn == peer.topic_arn(ALARM_TOPIC)

    peer.expect_second_setup()
    second = setup(peer.clients)
    assert [s.action for s in second.steps] == [
        "ensured",
        "ensured",
        "unchanged",
        "unchanged",
        "ensured",
        "ensured",
    ]
    # No duplicates anywhere (moto holds the real state).
    sns, sesv2, cloudwatch = peer.clients.sns, peer.clients.sesv2, peer.clients.cloudwatch
    assert len(sns.list_topics()["Topics"]) == 2
    assert sesv2.list_configuration_sets()["ConfigurationSets"] == [CONFIGURATION_SET]
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 7


def test_setup_converges_a_set_made_by_hand(peer: Peer) -> None:
    peer.clients.sesv2.create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    fix_moto_sending_flag()
    s = peer.stubber
    name = {"ConfigurationSetName": CONFIGURATION_SET}
    s.add_response(
        "put_configuration_set_reputation_options", {}, name | {"ReputationMetricsEnabled": True}
    )
    s.add_response(
        "put_configuration_set_suppression_options",
        {},
        name | {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
    )
    s.add_response("put_configuration_set_delivery_options", {}, name | {"TlsPolicy": "REQUIRE"})
    stale = peer.destination() | {"MatchingEventTypes": ["BOUNCE", "COMPLAINT"]}
    s.add_response("get_configuration_set_event_destinations", {"EventDestinations": [stale]})
    wanted = {k: v for k, v in peer.destination().items() if k != "Name"}
    s.add_response(
        "update_configuration_set_event_destination",
        {},
        name | {"EventDestinationName": EVENT_DESTINATION, "EventDestination": wanted},
    )
    s.add_response("put_account_suppression_attributes", {})
    report = setup(peer.clients)
    assert [step.action for step in report.steps][2:4] == ["updated", "updated"]
    assert "ReputationOptions, SuppressionOptions, DeliveryOptions" in report.steps[2].name


def test_setup_configures_the_set_topics_and_alarms(peer: Peer) -> None:
    peer.expect_first_setup()
    report = setup(peer.clients)
    config = peer.clients.sesv2.get_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    assert config["ReputationOptions"]["ReputationMetricsEnabled"] is True
    assert sorted(config["SuppressionOptions"]["SuppressedReasons"]) == ["BOUNCE", "COMPLAINT"]
    assert config["DeliveryOptions"]["TlsPolicy"] == "REQUIRE"
    # (moto keeps but does not echo SignatureVersion, so it is not read back here)
    alarms = {a["AlarmName"]: a for a in peer.clients.cloudwatch.describe_alarms()["MetricAlarms"]}
    thresholds = {
        (a.get("MetricName"), a["Threshold"]) for a in alarms.values() if a.get("MetricName")
    }
    assert {
        ("Reputation.BounceRate", 0.05),
        ("Reputation.BounceRate", 0.02),
        ("Reputation.ComplaintRate", 0.001),
        ("Reputation.ComplaintRate", 0.0005),
        ("Reject", 1.0),
    } <= thresholds
    assert all(a["AlarmActions"] == [report.alarm_topic_arn] for a in alarms.values())
    assert alarms["timeplan-ses-delivery-anomaly"]["ComparisonOperator"] == "LessThanLowerThreshold"


def test_check_passes_after_setup(peer: Peer) -> None:
    peer.create_identity()
    peer.expect_first_setup()
    setup(peer.clients)
    fix_moto_sending_flag()
    peer.expect_check()
    report = check(peer.clients, domain=DOMAIN, region=MOTO_REGION)
    assert report.ok, report.table()
    by_control = {line.control: line for line in report.lines}
    assert by_control["DKIM key length"].status is Status.PASS
    assert by_control["sending quota"].detail == "50000/24h, 14/s"
    # moto keeps no MAIL FROM attributes: advice, not a failure.
    assert by_control["custom MAIL FROM domain"].status is Status.WARN


def test_check_fails_on_a_bare_sandbox_account(peer: Peer) -> None:
    sandbox = ACCOUNT | {
        "ProductionAccessEnabled": False,
        "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0},
        "SuppressionAttributes": {"SuppressedReasons": []},
    }
    peer.stubber.add_client_error(
        "get_configuration_set_event_destinations", "NotFoundException", http_status_code=404
    )
    peer.stubber.add_response("get_account", sandbox)
    report = check(peer.clients, domain=DOMAIN, region=MOTO_REGION)
    assert not report.ok
    failed = {line.control for line in report.lines if line.status is Status.FAIL}
    assert {
        "domain identity verified",
        "DKIM signing",
        f"configuration set {CONFIGURATION_SET}",
        "event destination (SNS, all event types)",
        "account suppression BOUNCE+COMPLAINT",
        "production access",
    } <= failed


def test_an_operation_the_peer_lacks_fails_its_lines_not_the_check(peer: Peer) -> None:
    peer.create_identity()
    peer.expect_first_setup()
    setup(peer.clients)
    fix_moto_sending_flag()
    peer.stubber.add_response(
        "get_configuration_set_event_destinations", {"EventDestinations": [peer.destination()]}
    )
    # What moto itself answers for GetAccount: a bare 404.
    peer.stubber.add_client_error("get_account", "404", http_status_code=404)
    report = check(peer.clients, domain=DOMAIN, region=MOTO_REGION)
    assert not report.ok
    production = next(line for line in report.lines if line.control == "production access")
    assert (production.status, production.detail) == (Status.FAIL, "GetAccount failed (404)")


def test_check_names_missing_event_types(peer: Peer) -> None:
    partial = peer.destination() | {"MatchingEventTypes": ["SEND", "BOUNCE", "COMPLAINT"]}
    peer.stubber.add_response(
        "get_configuration_set_event_destinations", {"EventDestinations": [partial]}
    )
    peer.stubber.add_response("get_account", ACCOUNT)
    report = check(peer.clients, domain=DOMAIN, region=MOTO_REGION)
    line = next(line for line in report.lines if line.control.startswith("event destination"))
    assert line.status is Status.FAIL
    assert line.detail == (
        "missing DELIVERY, DELIVERY_DELAY, REJECT, RENDERING_FAILURE, SUBSCRIPTION"
    )


def test_read_quota(peer: Peer) -> None:
    peer.stubber.add_response("get_account", ACCOUNT)
    assert read_quota(peer.clients.sesv2) == Quota(50000.0, 14.0)
    unlimited = ACCOUNT | {
        "SendQuota": {"Max24HourSend": -1.0, "MaxSendRate": -1.0, "SentLast24Hours": 0.0}
    }
    peer.stubber.add_response("get_account", unlimited)
    quota = read_quota(peer.clients.sesv2)
    assert quota is not None
    assert quota.daily_ceiling is None
    assert quota.rate_ceiling is None
    peer.stubber.add_client_error("get_account", "404", http_status_code=404)
    assert read_quota(peer.clients.sesv2) is None


def test_cli_setup_then_check(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.cli import Exit, cli

    monkeypatch.setattr(SesClients, "create", classmethod(lambda _cls, *_a: peer.clients))
    monkeypatch.setenv("REMINDERS_MAIL_DOMAIN", DOMAIN)
    peer.create_identity()
    runner = CliRunner()
    peer.expect_first_setup()
    result = runner.invoke(cli, ["ses", "setup"])
    assert result.exit_code == 0, result.output
    assert "created    configuration set timeplan-transactional" in result.output
    fix_moto_sending_flag()
    peer.expect_second_setup()
    assert runner.invoke(cli, ["ses", "setup"]).exit_code == 0
    peer.expect_check()
    result = runner.invoke(cli, ["ses", "check"])
    assert result.exit_code == 0, result.output
    assert "ready for production" in result.output
    peer.expect_check(ACCOUNT | {"ProductionAccessEnabled": False})
    result = runner.invoke(cli, ["ses", "check"])
    assert isinstance(result.exception, Exit)
    assert result.exception.code == 1
    assert "sandbox" in result.output
