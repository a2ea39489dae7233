"""``reminders ses check``: the SES production checklist as a table of pass / warn / fail.

One line per control. A *required* control that fails makes the whole check fail (the CLI
exits 1); warnings are advice. An API error, including an operation the peer does not
implement, fails the lines that needed its answer and the check goes on.

The controls follow AWS's production-access and deliverability guidance:
- identity verified in the sending region, DKIM signing with 2048-bit keys, a custom MAIL
  FROM domain: https://docs.aws.amazon.com/ses/latest/dg/send-email-authentication.html
- configuration set with reputation metrics and event publishing of every event the engine
  reads: https://docs.aws.amazon.com/ses/latest/dg/using-configuration-sets.html
- suppression of bounces and complaints:
  https://docs.aws.amazon.com/ses/latest/dg/sending-email-suppression-list.html
- production access, sending enabled, healthy enforcement status, quota:
  https://docs.aws.amazon.com/ses/latest/dg/request-production-access.html
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scheduler.delivery.ses_setup import (
    CONFIGURATION_SET,
    DKIM_KEY_LENGTH,
    EVENT_TYPES,
    SANDBOX_DAILY_QUOTA,
    SUPPRESSED_REASONS,
    AwsCallFailed,
    SesClients,
    aws_call,
)


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check result, not a password
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckLine:
    control: str
    status: Status
    detail: str
    required: bool = True


@dataclass
class CheckReport:
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(line.required and line.status is Status.FAIL for line in self.lines)

    def table(self) -> str:
        width = max((len(line.control) for line in self.lines), default=10)
        rows = [f"{'control':<{width}}  result  detail"]
        for line in self.lines:
            mark = (
                line.status.value.upper()
                if line.required or line.status is Status.PASS
                else f"{line.status.value}"
            )
            rows.append(f"{line.control:<{width}}  {mark:<6}  {line.detail}")
        verdict = "ready for production" if self.ok else "NOT ready: a required control fails"
        rows.append(f"\n{verdict}")
        return "\n".join(rows)


def _line(control: str, passed: bool, detail: str, *, required: bool = True) -> CheckLine:
    status = Status.PASS if passed else (Status.FAIL if required else Status.WARN)
    return CheckLine(control, status, detail, required)


def _read(call: Callable[[], Mapping[str, Any]], operation: str) -> Mapping[str, Any] | str:
    """The answer, or a one-line reason it could not be had."""
    try:
        with aws_call(operation):
            return call()
    except AwsCallFailed as error:
        return f"{operation} failed ({error.code})"


def check(
    clients: SesClients,
    *,
    domain: str,
    region: str,
    configuration_set: str = CONFIGURATION_SET,
) -> CheckReport:
    report = CheckReport()
    sesv2 = clients.sesv2
    identity = _read(lambda: sesv2.get_email_identity(EmailIdentity=domain), "GetEmailIdentity")
    report.lines += _identity_lines(identity, domain, region)
    config = _read(
        lambda: sesv2.get_configuration_set(ConfigurationSetName=configuration_set),
        "GetConfigurationSet",
    )
    report.lines += _configuration_set_lines(config, configuration_set)
    destinations = _read(
        lambda: sesv2.get_configuration_set_event_destinations(
            ConfigurationSetName=configuration_set
        ),
        "GetConfigurationSetEventDestinations",
    )
    report.lines.append(_destinations_line(destinations))
    account = _read(sesv2.get_account, "GetAccount")
    report.lines += _account_lines(account)
    return report


def _identity_lines(answer: Mapping[str, Any] | str, domain: str, region: str) -> list[CheckLine]:
    if isinstance(answer, str):
        reason = f"{domain} is not an identity in {region}: {answer}"
        return [
            _line("domain identity verified", False, reason),
            _line("DKIM signing", False, answer),
            _line("DKIM key length", False, answer),
            _line("custom MAIL FROM domain", False, answer, required=False),
        ]
    # VerificationStatus (PENDING | SUCCESS | FAILED | TEMPORARY_FAILURE | NOT_STARTED) says
    # more than the VerifiedForSendingStatus flag; fall back to the flag when absent.
    status = answer.get("VerificationStatus") or (
        "SUCCESS" if answer.get("VerifiedForSendingStatus") else "NOT_VERIFIED"
    )
    dkim = answer.get("DkimAttributes") or {}
    key_length = dkim.get("CurrentSigningKeyLength") or dkim.get("NextSigningKeyLength") or "?"
    mail_from = answer.get("MailFromAttributes") or {}
    mail_from_status = mail_from.get("MailFromDomainStatus")
    return [
        _line(
            "domain identity verified",
            status == "SUCCESS" and answer.get("IdentityType", "DOMAIN") == "DOMAIN",
            f"{domain} in {region}: {status}",
        ),
        _line(
            "DKIM signing",
            dkim.get("Status") == "SUCCESS" and dkim.get("SigningEnabled", True) is True,
            f"status {dkim.get('Status', 'NOT_STARTED')}",
        ),
        _line("DKIM key length", key_length == DKIM_KEY_LENGTH, str(key_length)),
        _line(
            "custom MAIL FROM domain",
            mail_from_status == "SUCCESS",
            f"{mail_from.get('MailFromDomain')}: {mail_from_status}"
            if mail_from
            else "none: SES's amazonses.com MAIL FROM (SPF will not align for DMARC)",
            required=False,
        ),
    ]


def _configuration_set_lines(answer: Mapping[str, Any] | str, name: str) -> list[CheckLine]:
    if isinstance(answer, str):
        return [_line(f"configuration set {name}", False, answer)]
    reputation = (answer.get("ReputationOptions") or {}).get("ReputationMetricsEnabled") is True
    reasons = set((answer.get("SuppressionOptions") or {}).get("SuppressedReasons") or ())
    tls = (answer.get("DeliveryOptions") or {}).get("TlsPolicy", "OPTIONAL")
    sending = (answer.get("SendingOptions") or {}).get("SendingEnabled", True) is not False
    return [
        _line(
            f"configuration set {name}",
            sending,
            "exists, sending " + ("enabled" if sending else "PAUSED"),
        ),
        _line("reputation metrics", reputation, "enabled" if reputation else "disabled"),
        _line(
            "config-set suppression BOUNCE+COMPLAINT",
            reasons >= set(SUPPRESSED_REASONS),
            ", ".join(sorted(reasons)) or "none",
        ),
        _line("TLS required for delivery", tls == "REQUIRE", tls, required=False),
    ]


def _destinations_line(answer: Mapping[str, Any] | str) -> CheckLine:
    control = "event destination (SNS, all event types)"
    if isinstance(answer, str):
        return _line(control, False, answer)
    best: set[str] = set()
    for destination in answer.get("EventDestinations", []):
        if destination.get("Enabled") and destination.get("SnsDestination"):
            types = set(destination.get("MatchingEventTypes", ()))
            if len(types & EVENT_TYPES) > len(best & EVENT_TYPES):
                best = types
    missing = sorted(EVENT_TYPES - best)
    return _line(
        control, not missing, "all published" if not missing else "missing " + ", ".join(missing)
    )


def _account_lines(answer: Mapping[str, Any] | str) -> list[CheckLine]:
    if isinstance(answer, str):
        return [
            _line(c, False, answer)
            for c in (
                "account suppression BOUNCE+COMPLAINT",
                "production access",
                "sending enabled",
                "enforcement status",
                "sending quota",
            )
        ]
    reasons = set((answer.get("SuppressionAttributes") or {}).get("SuppressedReasons") or ())
    quota = answer.get("SendQuota") or {}
    daily, rate = quota.get("Max24HourSend"), quota.get("MaxSendRate")
    daily_text = "unlimited" if daily == -1 else f"{daily:g}/24h" if daily is not None else "?"
    rate_text = "unlimited" if rate == -1 else f"{rate:g}/s" if rate is not None else "?"
    enforcement = answer.get("EnforcementStatus", "?")
    return [
        _line(
            "account suppression BOUNCE+COMPLAINT",
            reasons >= set(SUPPRESSED_REASONS),
            ", ".join(sorted(reasons)) or "none",
        ),
        _line(
            "production access",
            answer.get("ProductionAccessEnabled") is True,
            "granted" if answer.get("ProductionAccessEnabled") else "sandbox",
        ),
        _line(
            "sending enabled",
            answer.get("SendingEnabled") is True,
            "yes" if answer.get("SendingEnabled") else "NO",
        ),
        _line(
            "enforcement status",
            enforcement == "HEALTHY",
            str(enforcement),
            required=enforcement not in ("HEALTHY", "PROBATION"),
        ),
        _line(
            "sending quota",
            daily is not None and (daily == -1 or daily > SANDBOX_DAILY_QUOTA),
            f"{daily_text}, {rate_text}",
            required=False,
        ),
    ]
