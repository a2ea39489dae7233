"""SNS message verification: real RSA signatures made in the test, a fake certificate host."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from scheduler.delivery import sns
from scheduler.delivery.sns import (
    SnsEnvelope,
    SnsMessageType,
    SnsRejected,
    SnsVerifier,
    check_cert_url,
    https_certificate_fetcher,
    string_to_sign,
)
from scheduler.errors import ConfigurationError, InvalidInput, PeerError

TOPIC = "arn:aws:sns:eu-west-1:123456789012:timeplan-ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000.pem"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37f"
)

# The field lists from https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html,
# written out again here so the test does not check string_to_sign against itself.
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def _certificate(key: Any, common_name: str = "sns.amazonaws.com") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class CountingFetcher:
    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.pem


@pytest.fixture
def fetcher(key: rsa.RSAPrivateKey) -> CountingFetcher:
    return CountingFetcher(_certificate(key))


@pytest.fixture
def verifier(fetcher: CountingFetcher) -> SnsVerifier:
    return SnsVerifier(fetcher, allowed_topic_arns=[TOPIC])


def sign(message: dict[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Sign like SNS does and return the message with Signature filled in."""
    keys = NOTIFICATION_KEYS if message["Type"] == "Notification" else CONFIRMATION_KEYS
    text = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = key.sign(text, padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def notification(version: str = "1", **extra: str) -> dict[str, str]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": '{"eventType":"Delivery","mail":{"messageId":"m-1"}}',
        "Timestamp": "2026-03-02T09:15:04.221Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }


def confirmation(version: str = "2", **extra: str) -> dict[str, str]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37f",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit SubscribeURL.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-03-02T09:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }


def headers_for(message: dict[str, str]) -> dict[str, str]:
    return {
        "x-amz-sns-message-type": message["Type"],
        "x-amz-sns-message-id": message["MessageId"],
        "x-amz-sns-topic-arn": message["TopicArn"],
        "x-amz-sns-subscription-arn": f"{TOPIC}:c9135db0",
    }


def body(message: dict[str, str]) -> bytes:
    return json.dumps(message).encode()


# --- valid messages --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_verifies(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, version: str
) -> None:
    message = sign(notification(version), key)
    envelope = verifier.verify(body(message), headers_for(message))
    assert envelope.type is SnsMessageType.NOTIFICATION
    assert envelope.message_id == message["MessageId"]
    assert envelope.topic_arn == TOPIC
    assert envelope.message == message["Message"]
    assert envelope.signature_version == version


def test_a_notification_with_a_subject_verifies_and_the_subject_is_signed(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey
) -> None:
    message = sign(notification("2", Subject="Amazon SES Email Event Notification"), key)
    assert verifier.verify(body(message), headers_for(message)).subject is not None
    tampered = {**message, "Subject": "something else"}
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(tampered), headers_for(tampered))


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_subscription_confirmation_verifies(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, version: str
) -> None:
    message = sign(confirmation(version), key)
    envelope = verifier.verify(body(message).decode(), headers_for(message))
    assert envelope.type is SnsMessageType.SUBSCRIPTION_CONFIRMATION
    assert envelope.token == "2336412f37f"
    assert envelope.subscribe_url == SUBSCRIBE_URL


def test_header_names_are_case_insensitive(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    message = sign(notification(), key)
    headers = {name.title(): value for name, value in headers_for(message).items()}
    assert verifier.verify(body(message), headers).message_id == message["MessageId"]


# --- tampering -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp"])
def test_a_tampered_signed_field_fails(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, field: str
) -> None:
    message = sign(notification("2"), key)
    tampered = {**message, field: message[field] + "0"}
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(tampered), headers_for(tampered))


def test_a_tampered_confirmation_token_fails(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    tampered = {**sign(confirmation("2"), key), "Token": "another-token"}
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(tampered), headers_for(tampered))


def test_a_tampered_message_fails_for_v1(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    message = sign(notification("1"), key)
    tampered = {**message, "Message": '{"eventType":"Complaint","mail":{"messageId":"m-1"}}'}
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(tampered), headers_for(tampered))


def test_a_signature_from_another_key_fails(
    verifier: SnsVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    message = sign(notification(), other_key)
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(message), headers_for(message))


def test_a_v1_signature_relabelled_v2_fails(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    message = {**sign(notification("1"), key), "SignatureVersion": "2"}
    with pytest.raises(SnsRejected, match="signature"):
        verifier.verify(body(message), headers_for(message))


@pytest.mark.parametrize("version", ["3", "0", ""])
def test_an_unknown_signature_version_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, version: str
) -> None:
    message = {**sign(notification("2"), key), "SignatureVersion": version}
    with pytest.raises(SnsRejected, match="SignatureVersion"):
        verifier.verify(body(message), headers_for(message))


def test_a_signature_that_is_not_base64_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey
) -> None:
    message = {**sign(notification(), key), "Signature": "not base64!"}
    with pytest.raises(SnsRejected, match="base64"):
        verifier.verify(body(message), headers_for(message))


# --- topic, type, shape, headers -------------------------------------------------------


def test_a_foreign_topic_is_refused_before_any_fetch(
    verifier: SnsVerifier, fetcher: CountingFetcher, key: rsa.RSAPrivateKey
) -> None:
    message = sign(notification(TopicArn="arn:aws:sns:eu-west-1:999999999999:evil"), key)
    with pytest.raises(SnsRejected, match="TopicArn") as caught:
        verifier.verify(body(message), headers_for(message))
    assert caught.value.field == "TopicArn"
    assert fetcher.calls == []


def test_an_unknown_type_is_refused(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    message = sign(notification(), key) | {"Type": "Surprise"}
    with pytest.raises(SnsRejected, match="unknown SNS message type"):
        verifier.verify(body(message), headers_for(message))


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b"\xff\xfe", b'"a string"'],
    ids=["not-json", "array", "not-utf8", "string"],
)
def test_a_body_that_is_not_a_json_object_is_refused(verifier: SnsVerifier, raw: bytes) -> None:
    with pytest.raises(SnsRejected):
        verifier.verify(raw, {})


@pytest.mark.parametrize("missing", ["MessageId", "Signature", "SigningCertURL", "Timestamp"])
def test_a_missing_field_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, missing: str
) -> None:
    message = sign(notification(), key)
    headers = headers_for(message)
    del message[missing]
    with pytest.raises(SnsRejected, match=f"missing {missing}"):
        verifier.verify(body(message), headers)


def test_a_confirmation_without_token_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey
) -> None:
    message = sign(confirmation(), key)
    del message["Token"]
    with pytest.raises(SnsRejected, match="missing Token"):
        verifier.verify(body(message), headers_for(message))


def test_a_non_string_field_is_refused(verifier: SnsVerifier, key: rsa.RSAPrivateKey) -> None:
    message: dict[str, Any] = sign(notification(), key)
    message["Message"] = {"eventType": "Bounce"}
    with pytest.raises(SnsRejected, match="Message is not a string"):
        verifier.verify(json.dumps(message), {})


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-amz-sns-message-type", "SubscriptionConfirmation"),
        ("x-amz-sns-message-id", "another-id"),
        ("x-amz-sns-topic-arn", "arn:aws:sns:eu-west-1:123456789012:other"),
    ],
)
def test_a_header_that_contradicts_the_body_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, header: str, value: str
) -> None:
    message = sign(notification(), key)
    headers = headers_for(message) | {header: value}
    with pytest.raises(SnsRejected, match="does not match") as caught:
        verifier.verify(body(message), headers)
    assert caught.value.field == header


@pytest.mark.parametrize(
    "header", ["x-amz-sns-message-type", "x-amz-sns-message-id", "x-amz-sns-topic-arn"]
)
def test_missing_headers_are_refused_by_default(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey, header: str
) -> None:
    message = sign(notification(), key)
    headers = headers_for(message)
    del headers[header]
    with pytest.raises(SnsRejected, match="missing header"):
        verifier.verify(body(message), headers)


def test_missing_headers_are_allowed_when_not_required_but_the_signature_is_not(
    fetcher: CountingFetcher, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    lenient = SnsVerifier(fetcher, allowed_topic_arns=[TOPIC], require_headers=False)
    message = sign(notification(), key)
    assert lenient.verify(body(message), {}).message_id == message["MessageId"]
    forged = sign(notification(), other_key)
    with pytest.raises(SnsRejected, match="signature"):
        lenient.verify(body(forged), {})
    mismatched = {"x-amz-sns-message-id": "another-id"}
    with pytest.raises(SnsRejected, match="does not match"):
        lenient.verify(body(message), mismatched)


def test_there_is_no_way_to_skip_the_signature() -> None:
    parameters = SnsVerifier.__init__.__code__.co_varnames
    assert not any("sign" in name or "skip" in name for name in parameters)


# --- certificate URL -------------------------------------------------------------------

GOOD_CERT_URLS = [
    CERT_URL,
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3250158c6506.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
]

BAD_CERT_URLS = {
    "http": "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "other-host": "https://example.com/SimpleNotificationService-abc.pem",
    "s3-bucket-host": "https://my-bucket.s3.amazonaws.com/SimpleNotificationService-abc.pem",
    "s3-path": "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/cert.pem",
    "sns-evil": "https://sns.evil.com/SimpleNotificationService-abc.pem",
    "suffix-evil": "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService.pem",
    "sns-subdomain-of-evil": "https://sns.us-east-1.amazonaws.com.cn.evil.com/cert.pem",
    "bucket-named-sns": "https://sns.s3.amazonaws.com.s3.amazonaws.com/cert.pem",
    "short-region": "https://sns.ab.amazonaws.com/SimpleNotificationService-abc.pem",
    "no-pem": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.crt",
    "pem-in-query": "https://sns.us-east-1.amazonaws.com/cert?x=.pem",
    "pem-then-query": "https://sns.us-east-1.amazonaws.com/cert.pem?redirect=https://evil.com",
    "userinfo": "https://sns.us-east-1.amazonaws.com@evil.com/cert.pem",
    "userinfo-before-good-host": "https://evil.com@sns.us-east-1.amazonaws.com/cert.pem",
    "port": "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    "explicit-443": "https://sns.us-east-1.amazonaws.com:443/cert.pem",
    "backslash": "https://sns.us-east-1.amazonaws.com\\@evil.com/cert.pem",
    "newline": "https://sns.us-east-1.amazon\naws.com/cert.pem",
    "tab-into-host": "https://sns.us-east-1.amazonaws.com\t.evil.com/cert.pem",
    "trailing-dot": "https://sns.us-east-1.amazonaws.com./cert.pem",
    "percent-dot": "https://sns.us-east-1.amazonaws.com%2eevil.com/cert.pem",
    "unicode-dot": "https://sns.us-east-1.amazonaws\u3002com/cert.pem",
    "no-scheme": "//sns.us-east-1.amazonaws.com/cert.pem",
    "empty": "",
}


@pytest.mark.parametrize("url", GOOD_CERT_URLS)
def test_sns_certificate_urls_are_accepted(url: str) -> None:
    check_cert_url(url)


@pytest.mark.parametrize("url", BAD_CERT_URLS.values(), ids=BAD_CERT_URLS.keys())
def test_certificate_url_tricks_are_refused(url: str) -> None:
    with pytest.raises(SnsRejected) as caught:
        check_cert_url(url)
    assert caught.value.field == "SigningCertURL"


@pytest.mark.parametrize("url", BAD_CERT_URLS.values(), ids=BAD_CERT_URLS.keys())
def test_verify_never_fetches_from_a_refused_url(
    verifier: SnsVerifier, fetcher: CountingFetcher, key: rsa.RSAPrivateKey, url: str
) -> None:
    message = sign(notification(SigningCertURL=url), key)
    with pytest.raises(SnsRejected, match="SigningCertURL"):
        verifier.verify(body(message), headers_for(message))
    assert fetcher.calls == []


def test_a_signed_confirmation_with_a_foreign_subscribe_url_is_refused(
    verifier: SnsVerifier, key: rsa.RSAPrivateKey
) -> None:
    message = sign(confirmation(SubscribeURL="https://evil.com/?Action=ConfirmSubscription"), key)
    with pytest.raises(SnsRejected, match="SubscribeURL"):
        verifier.verify(body(message), headers_for(message))


# --- certificates and the cache --------------------------------------------------------


def test_the_certificate_is_fetched_once_per_url(
    verifier: SnsVerifier, fetcher: CountingFetcher, key: rsa.RSAPrivateKey
) -> None:
    for version in ("1", "2", "1"):
        message = sign(notification(version), key)
        verifier.verify(body(message), headers_for(message))
    assert fetcher.calls == [CERT_URL]


def test_the_cache_evicts_the_least_recently_used_url(
    fetcher: CountingFetcher, key: rsa.RSAPrivateKey
) -> None:
    verifier = SnsVerifier(fetcher, allowed_topic_arns=[TOPIC], cache_size=2)
    urls = [CERT_URL, *GOOD_CERT_URLS[1:3]]
    order = [urls[0], urls[1], urls[0], urls[2], urls[0], urls[1]]
    for url in order:
        message = sign(notification(SigningCertURL=url), key)
        verifier.verify(body(message), headers_for(message))
    # urls[1] was least recently used when urls[2] arrived, so only it is fetched again.
    assert fetcher.calls == [urls[0], urls[1], urls[2], urls[1]]


def test_a_rejected_certificate_is_not_cached(key: rsa.RSAPrivateKey) -> None:
    answers = [b"garbage", _certificate(key)]
    calls: list[str] = []

    def flaky(url: str) -> bytes:
        calls.append(url)
        return answers[len(calls) - 1]

    verifier = SnsVerifier(flaky, allowed_topic_arns=[TOPIC])
    message = sign(notification(), key)
    with pytest.raises(SnsRejected, match="PEM"):
        verifier.verify(body(message), headers_for(message))
    verifier.verify(body(message), headers_for(message))
    assert len(calls) == 2


def test_a_non_rsa_certificate_is_refused(key: rsa.RSAPrivateKey) -> None:
    ec_pem = _certificate(ec.generate_private_key(ec.SECP256R1()))
    verifier = SnsVerifier(CountingFetcher(ec_pem), allowed_topic_arns=[TOPIC])
    message = sign(notification(), key)
    with pytest.raises(SnsRejected, match="RSA"):
        verifier.verify(body(message), headers_for(message))


def test_a_fetch_failure_is_a_retryable_peer_error(key: rsa.RSAPrivateKey) -> None:
    def down(url: str) -> bytes:
        raise PeerError("certificate host unreachable")

    verifier = SnsVerifier(down, allowed_topic_arns=[TOPIC])
    message = sign(notification(), key)
    with pytest.raises(PeerError) as caught:
        verifier.verify(body(message), headers_for(message))
    assert caught.value.retryable


# --- construction and the canonical string ---------------------------------------------


@pytest.mark.parametrize("topics", [[], [""], ["  "]])
def test_an_empty_allow_list_is_a_configuration_error(
    fetcher: CountingFetcher, topics: list[str]
) -> None:
    with pytest.raises(ConfigurationError):
        SnsVerifier(fetcher, allowed_topic_arns=topics)


def test_sns_rejected_is_invalid_input() -> None:
    error = SnsRejected("nope", field="TopicArn")
    assert isinstance(error, InvalidInput)
    assert error.reason == "nope"
    assert not error.retryable


def test_string_to_sign_for_a_notification() -> None:
    envelope = SnsEnvelope.from_json(json.dumps(notification(Signature="x")))
    assert string_to_sign(envelope) == (
        b"Message\n"
        b'{"eventType":"Delivery","mail":{"messageId":"m-1"}}\n'
        b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        b"Timestamp\n2026-03-02T09:15:04.221Z\n"
        b"TopicArn\n" + TOPIC.encode() + b"\n"
        b"Type\nNotification\n"
    )
    with_subject = SnsEnvelope.from_json(json.dumps(notification(Signature="x", Subject="S")))
    assert b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nS\nTimestamp\n" in (
        string_to_sign(with_subject)
    )


def test_string_to_sign_for_a_confirmation_leaves_out_subject_and_unsubscribe_url() -> None:
    message = confirmation(Signature="x", Subject="ignored", UnsubscribeURL="ignored")
    text = string_to_sign(SnsEnvelope.from_json(json.dumps(message)))
    assert text.decode().split("\n")[0::2] == [*CONFIRMATION_KEYS, ""]
    assert b"ignored" not in text


# --- the default fetcher (no network: the opener is replaced) ---------------------------


class FakeOpener:
    def __init__(self, outcome: bytes | Exception) -> None:
        self.outcome = outcome
        self.urls: list[str] = []

    def open(self, request: Any, timeout: float) -> io.BytesIO:
        self.urls.append(request.full_url)
        assert timeout <= 10
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return io.BytesIO(self.outcome)


def _install(monkeypatch: pytest.MonkeyPatch, outcome: bytes | Exception) -> FakeOpener:
    opener = FakeOpener(outcome)
    monkeypatch.setattr(sns, "_OPENER", opener)
    return opener


def test_the_default_fetcher_returns_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    opener = _install(monkeypatch, b"-----BEGIN CERTIFICATE-----")
    assert https_certificate_fetcher(CERT_URL) == b"-----BEGIN CERTIFICATE-----"
    assert opener.urls == [CERT_URL]


def test_the_default_fetcher_checks_the_url_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    opener = _install(monkeypatch, b"x")
    with pytest.raises(SnsRejected):
        https_certificate_fetcher(BAD_CERT_URLS["s3-bucket-host"])
    assert opener.urls == []


def test_the_default_fetcher_caps_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, b"x" * (sns.MAX_CERTIFICATE_BYTES + 1))
    with pytest.raises(SnsRejected, match="too large"):
        https_certificate_fetcher(CERT_URL)


def _http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(CERT_URL, code, "status", None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (_http_error(503), PeerError),
        (_http_error(404), SnsRejected),
        (_http_error(302), SnsRejected),  # a refused redirect surfaces as the 3xx itself
        (urllib.error.URLError("timed out"), PeerError),
        (TimeoutError("timed out"), PeerError),
    ],
    ids=["5xx", "404", "redirect", "url-error", "timeout"],
)
def test_the_default_fetcher_maps_failures(
    monkeypatch: pytest.MonkeyPatch, outcome: Exception, expected: type[Exception]
) -> None:
    _install(monkeypatch, outcome)
    with pytest.raises(expected):
        https_certificate_fetcher(CERT_URL)


def test_the_default_opener_follows_no_redirect() -> None:
    handler = sns._NoRedirect()
    request = urllib.request.Request(CERT_URL)
    target = handler.redirect_request(request, None, 302, "Found", {}, "https://evil.com/x")  # type: ignore[func-returns-value]
    assert target is None
