"""The Amazon SES v2 sender: the only module that imports boto3 (DESIGN.md §3, §7).

Messages go out as ``SendEmail`` with ``Content.Raw``: we build the MIME ourselves so the
RFC 8058 headers are exactly ours (and moto keeps raw MIME, so tests can read them).
Request shape: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html

``SES_ERRORS`` is THE table from SES error codes to the engine's send errors; nothing else
in the engine looks at a botocore exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ParamValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from scheduler.delivery.senders import OutgoingEmail
from scheduler.errors import (
    MessageRejected,
    SenderMisconfigured,
    SendError,
    StreamPaused,
    Throttled,
)

if TYPE_CHECKING:
    from mypy_boto3_sesv2.client import SESV2Client
    from mypy_boto3_sesv2.type_defs import MessageTagTypeDef

DEFAULT_CONFIGURATION_SET: Final = "timeplan-transactional"

# SendEmail errors: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors
# Throttling codes also follow botocore's standard retry mode (retryhandler/standard.py).
SES_ERRORS: Final[Mapping[str, type[SendError]]] = {
    # Rate or quota exceeded: AWS asks for exponential backoff with jitter.
    "TooManyRequestsException": Throttled,
    "Throttling": Throttled,
    "ThrottlingException": Throttled,
    "LimitExceededException": Throttled,
    # The account or configuration set may not send: pause the stream, alert.
    "SendingPausedException": StreamPaused,
    "AccountSuspendedException": StreamPaused,
    # This message can never be sent as it is.
    "MessageRejected": MessageRejected,
    "BadRequestException": MessageRejected,
    # Our configuration is wrong: stop loudly.
    "MailFromDomainNotVerifiedException": SenderMisconfigured,
    "NotFoundException": SenderMisconfigured,
    "ConfigurationSetDoesNotExist": SenderMisconfigured,
    "ConfigurationSetDoesNotExistException": SenderMisconfigured,
    "AccessDenied": SenderMisconfigured,
    "AccessDeniedException": SenderMisconfigured,
}

_STREAM_PAUSED_WHY: Final[Mapping[str, str]] = {
    "SendingPausedException": "SES sending is paused for the account or configuration set",
    "AccountSuspendedException": "the SES account is suspended",
}


class SesSender:
    """Sends through SES v2 ``SendEmail`` (Raw), one recipient per call."""

    name = "ses"

    def __init__(
        self, client: SESV2Client, *, configuration_set: str = DEFAULT_CONFIGURATION_SET
    ) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, email: OutgoingEmail) -> str:
        # OutgoingEmail has already held the tags to SES's alphabet.
        tags = [_tag(name, value) for name, value in email.tags.items()]
        try:
            response = self._client.send_email(
                FromEmailAddress=email.from_addr,
                Destination={"ToAddresses": [email.to]},
                Content={"Raw": {"Data": email.raw}},
                ConfigurationSetName=self._configuration_set,
                EmailTags=tags,
            )
        except ClientError as exc:
            raise send_error_for(exc) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            # Includes read timeouts: SendEmail is not idempotent, so the retry may repeat
            # a send that happened; delivery is at-least-once by design (DESIGN.md §7).
            raise Throttled(f"SES unreachable: {exc}") from exc
        except ParamValidationError as exc:
            raise MessageRejected(f"SES refused the request shape: {exc}") from exc
        except BotoCoreError as exc:
            # Credentials, region, endpoint: nothing a retry of this message fixes.
            raise SenderMisconfigured(f"SES client is misconfigured: {exc}") from exc
        return response["MessageId"]


def send_error_for(exc: ClientError) -> SendError:
    """Map one botocore ``ClientError`` from SES onto the engine's send errors."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    detail = str(error.get("Message", "")) or str(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    error_class = SES_ERRORS.get(code)
    if error_class is StreamPaused:
        return StreamPaused(f"{_STREAM_PAUSED_WHY[code]} ({code}): {detail}")
    if error_class is not None:
        return error_class(f"SES {code}: {detail}")
    if status == 429 or status >= 500:
        return Throttled(f"SES {code or status}: {detail}")
    # An unknown 4xx (expired credentials, bad signature, an API we lack) will not pass by
    # retrying and must not silently fail messages either: stop loudly.
    return SenderMisconfigured(f"SES {code or status}: {detail}")


def _tag(name: str, value: str) -> MessageTagTypeDef:
    return {"Name": name, "Value": value}


def make_ses_client(region: str, endpoint_url: str | None = None) -> SESV2Client:
    """An SES v2 client with botocore's standard retry mode and short timeouts.

    Standard mode retries throttling codes (TooManyRequestsException,
    LimitExceededException) and transient 5xx a few times before we see them; legacy mode
    (the default) would not retry LimitExceededException.
    https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=15,
    )
    return boto3.client("sesv2", region_name=region, endpoint_url=endpoint_url, config=config)


def make_aws_client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A client for another AWS service the engine talks to (SQS, SNS, CloudWatch), with the
    same standard retries; ``endpoint_url`` points at a local peer such as moto.

    The read timeout exceeds SQS's longest long poll (20 s), so a poll never times out.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
    )
    # boto3-stubs types clients per literal service name; this factory takes any name.
    factory: Callable[..., Any] = boto3.client
    return factory(service, region_name=region, endpoint_url=endpoint_url, config=config)
