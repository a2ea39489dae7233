"""SES error mapping, with botocore's Stubber: moto cannot produce these errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from scheduler.delivery.senders import OutgoingEmail
from scheduler.delivery.ses import SES_ERRORS, SesSender, make_ses_client
from scheduler.errors import (
    MessageRejected,
    SenderMisconfigured,
    SendError,
    StreamPaused,
    Throttled,
)

EMAIL = OutgoingEmail(
    ref="msg-1",
    to="zoe@example.org",
    from_addr="Time Plan <support@timeplanpush.com>",
    raw=b"From: support@timeplanpush.com\r\nTo: zoe@example.org\r\n\r\nhi\r\n",
    tags={"message": "msg-1", "topic": "task-reminder"},
)
EXPECTED_REQUEST = {
    "FromEmailAddress": "Time Plan <support@timeplanpush.com>",
    "Destination": {"ToAddresses": ["zoe@example.org"]},
    "Content": {"Raw": {"Data": EMAIL.raw}},
    "ConfigurationSetName": "timeplan-transactional",
    "EmailTags": [
        {"Name": "message", "Value": "msg-1"},
        {"Name": "topic", "Value": "task-reminder"},
    ],
}


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "sesv2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_success_sends_the_exact_request_and_returns_the_message_id(
    client: Any, stubber: Stubber
) -> None:
    stubber.add_response("send_email", {"MessageId": "ses-0001"}, EXPECTED_REQUEST)
    assert SesSender(client).send(EMAIL) == "ses-0001"


def test_configuration_set_is_configurable(client: Any, stubber: Stubber) -> None:
    expected = {**EXPECTED_REQUEST, "ConfigurationSetName": "other-set"}
    stubber.add_response("send_email", {"MessageId": "ses-0002"}, expected)
    assert SesSender(client, configuration_set="other-set").send(EMAIL) == "ses-0002"


MAPPED = [
    ("TooManyRequestsException", 429, Throttled),
    ("Throttling", 400, Throttled),
    ("ThrottlingException", 400, Throttled),
    ("LimitExceededException", 400, Throttled),
    ("SendingPausedException", 400, StreamPaused),
    ("AccountSuspendedException", 400, StreamPaused),
    ("MessageRejected", 400, MessageRejected),
    ("BadRequestException", 400, MessageRejected),
    ("MailFromDomainNotVerifiedException", 400, SenderMisconfigured),
    ("NotFoundException", 404, SenderMisconfigured),
    ("ConfigurationSetDoesNotExist", 400, SenderMisconfigured),
    ("ConfigurationSetDoesNotExistException", 400, SenderMisconfigured),
    ("AccessDenied", 403, SenderMisconfigured),
    ("AccessDeniedException", 403, SenderMisconfigured),
]


def test_every_code_in_the_table_is_tested() -> None:
    assert {code for code, _, _ in MAPPED} == set(SES_ERRORS)


@pytest.mark.parametrize(("code", "status", "expected"), MAPPED)
def test_ses_error_codes_map_onto_send_errors(
    client: Any, stubber: Stubber, code: str, status: int, expected: type[SendError]
) -> None:
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message="details", http_status_code=status
    )
    with pytest.raises(expected) as info:
        SesSender(client).send(EMAIL)
    assert type(info.value) is expected
    assert code in str(info.value)
    assert "details" in str(info.value)


@pytest.mark.parametrize(
    ("code", "says"),
    [("SendingPausedException", "paused"), ("AccountSuspendedException", "suspended")],
)
def test_stream_paused_says_which(client: Any, stubber: Stubber, code: str, says: str) -> None:
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=400)
    with pytest.raises(StreamPaused, match=says) as info:
        SesSender(client).send(EMAIL)
    assert info.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_throttled(client: Any, stubber: Stubber, status: int) -> None:
    stubber.add_client_error(
        "send_email", service_error_code="InternalFailure", http_status_code=status
    )
    with pytest.raises(Throttled):
        SesSender(client).send(EMAIL)


def test_unknown_client_error_stops_loudly(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "send_email", service_error_code="UnrecognizedClientException", http_status_code=403
    )
    with pytest.raises(SenderMisconfigured, match="UnrecognizedClientException"):
        SesSender(client).send(EMAIL)


def test_retryable_flags_follow_the_table() -> None:
    assert Throttled("x").retryable
    assert StreamPaused("x").retryable
    assert not MessageRejected("x").retryable
    assert not SenderMisconfigured("x").retryable


class RaisingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_email(self, **_: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"), Throttled),
        (ConnectTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), Throttled),
        (ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), Throttled),
        (NoCredentialsError(), SenderMisconfigured),
        (ParamValidationError(report="bad"), MessageRejected),
    ],
)
def test_transport_and_client_side_errors(error: Exception, expected: type[SendError]) -> None:
    with pytest.raises(expected):
        SesSender(RaisingClient(error)).send(EMAIL)  # type: ignore[arg-type]


def test_make_ses_client_uses_standard_retries_and_short_timeouts() -> None:
    client = make_ses_client("eu-west-1", "http://127.0.0.1:1")
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    assert config.connect_timeout <= 10
    assert config.read_timeout <= 30
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
