"""Verify Amazon SNS HTTP(S) messages before anything in them is believed.

SES publishes its events to an SNS topic; SNS POSTs them to ``/ses/events`` as a JSON
envelope. Anyone can POST to that URL, so an envelope is trusted only after:

1. its shape is right and its ``Type`` is one SNS sends;
2. the ``x-amz-sns-*`` headers agree with the body;
3. its ``TopicArn`` is one we subscribed to (a signature alone proves only that *some*
   SNS topic sent it: any AWS account can create a topic and subscribe our URL);
4. its ``SigningCertURL`` is an https URL on an SNS host, ending ``.pem``;
5. its signature verifies (RSA PKCS#1 v1.5; SHA1 for version 1, SHA256 for version 2)
   against the certificate fetched from that URL.

There is deliberately no switch that skips step 5.

Rules: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
and the official validator, aws/aws-php-sns-message-validator ``MessageValidator.php``.

Replays: the signature covers ``Timestamp`` but SNS itself re-sends the same signed
message on retry, so a replay is indistinguishable from a retry. Ingestion is idempotent
on ``MessageId`` (the ``ses_event`` table), which makes a replay a no-op; this module
therefore does not enforce a freshness window (and so needs no clock).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scheduler.errors import ConfigurationError, InvalidInput, PeerError

CertificateFetcher = Callable[[str], bytes]


class SnsRejected(InvalidInput):
    """The request is not a genuine SNS message for one of our topics: answer 4xx, drop it."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason, field=field)
        self.reason = reason


class SnsMessageType(StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


# Signed fields, in the order SNS signs them (byte-wise sorted key names). A field is
# included only when present: that matters for the optional Notification ``Subject``.
_SIGNED_FIELDS: Mapping[SnsMessageType, tuple[str, ...]] = {
    SnsMessageType.NOTIFICATION: (
        "Message",
        "MessageId",
        "Subject",
        "Timestamp",
        "TopicArn",
        "Type",
    ),
    SnsMessageType.SUBSCRIPTION_CONFIRMATION: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    SnsMessageType.UNSUBSCRIBE_CONFIRMATION: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}

_COMMON_REQUIRED: tuple[str, ...] = (
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_CONFIRMATION_REQUIRED = ("Token", "SubscribeURL")
_OPTIONAL = ("Subject", "Token", "SubscribeURL", "UnsubscribeURL")

# Same pattern as the AWS PHP validator, lower-case only: hosts are case-insensitive and
# we lower-case before matching. The ``sns.`` prefix and the anchored suffix refuse S3
# buckets and other tenants under amazonaws.com (the django-ses certificate-spoofing bug).
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?$")

# SHA1withRSA for v1, SHA256withRSA for v2:
# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
_SIGNATURE_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,  # SignatureVersion 1 is defined as SHA1withRSA; not our choice
    "2": hashes.SHA256,
}

_HEADER_FIELDS = (
    ("x-amz-sns-message-type", "Type"),
    ("x-amz-sns-message-id", "MessageId"),
    ("x-amz-sns-topic-arn", "TopicArn"),
)


@dataclass(frozen=True, slots=True)
class SnsEnvelope:
    """One SNS HTTP(S) message as SNS sent it, values exactly as received.

    ``unsubscribe_url`` and a confirmation's ``subject`` are not covered by the signature:
    nothing may act on them.
    """

    type: SnsMessageType
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    signature: str
    signing_cert_url: str
    subject: str | None = None
    token: str | None = None
    subscribe_url: str | None = None
    unsubscribe_url: str | None = None

    @classmethod
    def from_json(cls, body: bytes | str) -> SnsEnvelope:
        """Parse the POST body; refuse anything that is not a well-formed SNS envelope."""
        data = _load_object(body)
        type_value = _required_string(data, "Type")
        try:
            message_type = SnsMessageType(type_value)
        except ValueError:
            raise SnsRejected(f"unknown SNS message type {type_value!r}", field="Type") from None
        required = _COMMON_REQUIRED
        if message_type is not SnsMessageType.NOTIFICATION:
            required = required + _CONFIRMATION_REQUIRED
        values = {name: _required_string(data, name) for name in required}
        optional = {name: _optional_string(data, name) for name in _OPTIONAL}
        return cls(
            type=message_type,
            message_id=values["MessageId"],
            topic_arn=values["TopicArn"],
            message=values["Message"],
            timestamp=values["Timestamp"],
            signature_version=values["SignatureVersion"],
            signature=values["Signature"],
            signing_cert_url=values["SigningCertURL"],
            subject=optional["Subject"],
            token=optional["Token"],
            subscribe_url=optional["SubscribeURL"],
            unsubscribe_url=optional["UnsubscribeURL"],
        )

    def field(self, name: str) -> str | None:
        """The value of an SNS field by its wire name (``"MessageId"``), or None if absent."""
        return {
            "Type": self.type.value,
            "MessageId": self.message_id,
            "TopicArn": self.topic_arn,
            "Message": self.message,
            "Timestamp": self.timestamp,
            "Subject": self.subject,
            "Token": self.token,
            "SubscribeURL": self.subscribe_url,
        }.get(name)


def _load_object(body: bytes | str) -> dict[str, Any]:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise SnsRejected("body is not JSON") from None
    if not isinstance(data, dict):
        raise SnsRejected("body is not a JSON object")
    return data


def _optional_string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    # SNS omits absent optional fields; a JSON null is read the same way (django-ses does too).
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnsRejected(f"{name} is not a string", field=name)
    return value


def _required_string(data: Mapping[str, Any], name: str) -> str:
    value = _optional_string(data, name)
    if value is None:
        raise SnsRejected(f"missing {name}", field=name)
    return value


def string_to_sign(envelope: SnsEnvelope) -> bytes:
    """The canonical bytes SNS signs: ``"Key\\nvalue\\n"`` for each present signed key."""
    parts: list[str] = []
    for name in _SIGNED_FIELDS[envelope.type]:
        value = envelope.field(name)
        if value is not None:
            parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _is_sns_https_url(url: str) -> bool:
    # urlsplit silently drops tabs and newlines (WHATWG rules), so a URL holding any
    # control, space or non-ASCII character could parse to a different host than the one
    # a later fetch would use: refuse those outright.
    if not url.isascii() or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. a non-numeric port
        return False
    host = parts.hostname or ""
    return (
        parts.scheme == "https"
        and port is None  # an explicit port, even :443, is not what SNS sends
        and parts.username is None
        and parts.password is None
        and "@" not in parts.netloc
        # the hostname must be exactly the netloc: no userinfo, port or odd encodings left
        and parts.netloc.lower() == host
        and _SNS_HOST.fullmatch(host) is not None
    )


def check_cert_url(url: str) -> None:
    """Refuse a SigningCertURL unless it is ``https://sns.<region>.amazonaws.com[.cn]/….pem``."""
    if not _is_sns_https_url(url):
        raise SnsRejected(
            "SigningCertURL is not an https URL on an SNS host", field="SigningCertURL"
        )
    parts = urlsplit(url)
    if not parts.path.endswith(".pem") or parts.query or parts.fragment:
        raise SnsRejected("SigningCertURL does not name a .pem file", field="SigningCertURL")


def check_subscribe_url(url: str) -> None:
    """Refuse a SubscribeURL that is not an https URL on an SNS host.

    A verified confirmation can only carry SNS's own URL; this is defence in depth for the
    caller that will GET it (an attacker-chosen URL there would be a server-side request).
    """
    if not _is_sns_https_url(url):
        raise SnsRejected("SubscribeURL is not an https URL on an SNS host", field="SubscribeURL")


class SnsVerifier:
    """Checks SNS messages for a fixed set of topics; safe to share between threads.

    ``require_headers``: real SNS always sends ``x-amz-sns-message-type``,
    ``x-amz-sns-message-id`` and ``x-amz-sns-topic-arn``
    (https://docs.aws.amazon.com/sns/latest/dg/http-header.html), so by default a request
    without them is refused. moto's SNS HTTP delivery does not send them; pass
    ``require_headers=False`` only for such a local peer. Headers that are present must
    always match the body, and the signature is always verified.
    """

    def __init__(
        self,
        fetch_certificate: CertificateFetcher,
        *,
        allowed_topic_arns: Collection[str],
        cache_size: int = 32,
        require_headers: bool = True,
    ) -> None:
        topics = frozenset(arn.strip() for arn in allowed_topic_arns if arn.strip())
        if not topics:
            raise ConfigurationError("SNS verification needs at least one allowed TopicArn")
        if cache_size < 1:
            raise ConfigurationError("SNS certificate cache_size must be at least 1")
        self._fetch = fetch_certificate
        self._topics = topics
        self._require_headers = require_headers
        self._cache_size = cache_size
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> SnsEnvelope:
        """Return the envelope if every check passes; raise :class:`SnsRejected` otherwise.

        A certificate that cannot be fetched right now raises :class:`PeerError` (retryable:
        answer 5xx so SNS delivers again later).
        """
        envelope = SnsEnvelope.from_json(body)
        self._check_headers(envelope, headers)
        if envelope.topic_arn not in self._topics:
            raise SnsRejected("TopicArn is not allowed", field="TopicArn")
        hash_factory = _SIGNATURE_HASHES.get(envelope.signature_version)
        if hash_factory is None:
            raise SnsRejected("unsupported SignatureVersion", field="SignatureVersion")
        check_cert_url(envelope.signing_cert_url)
        if envelope.subscribe_url is not None:
            check_subscribe_url(envelope.subscribe_url)
        signature = _decode_signature(envelope.signature)
        key = self._public_key(envelope.signing_cert_url)
        try:
            key.verify(signature, string_to_sign(envelope), padding.PKCS1v15(), hash_factory())
        except InvalidSignature:
            raise SnsRejected("signature does not verify", field="Signature") from None
        return envelope

    def _check_headers(self, envelope: SnsEnvelope, headers: Mapping[str, str]) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        for header, name in _HEADER_FIELDS:
            value = lowered.get(header)
            if value is None:
                if self._require_headers:
                    raise SnsRejected(f"missing header {header}", field=header)
                continue
            if value.strip() != envelope.field(name):
                raise SnsRejected(f"header {header} does not match {name}", field=header)

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
                return key
        # Fetch outside the lock: a slow fetch must not stall verifications of cached URLs.
        # Two threads may fetch the same URL once each; both results are the same key.
        key = _load_rsa_key(self._fetch(url))
        with self._lock:
            self._keys[url] = key
            self._keys.move_to_end(url)
            while len(self._keys) > self._cache_size:
                self._keys.popitem(last=False)
        return key


def _decode_signature(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SnsRejected("Signature is not base64", field="Signature") from None


def _load_rsa_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsRejected("signing certificate is not a PEM X.509 certificate") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsRejected("signing certificate does not hold an RSA key")
    return key


# --- the default fetcher -------------------------------------------------------------------

MAX_CERTIFICATE_BYTES = 64 * 1024  # SNS certificates are ~2 KB; anything huge is not one
CERTIFICATE_TIMEOUT_SECONDS = 5.0  # SNS waits ~15 s for our answer; leave room to respond


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead away from the checked SNS host, so none is followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def https_certificate_fetcher(url: str) -> bytes:
    """GET a signing certificate over https (TLS-verified), capped in time and size.

    The URL is checked again here so this function is safe on its own. Network trouble and
    5xx answers raise :class:`PeerError` (retry later); anything else raises
    :class:`SnsRejected`.
    """
    check_cert_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/x-pem-file"})  # noqa: S310 - https only, host checked above
    try:
        with _OPENER.open(request, timeout=CERTIFICATE_TIMEOUT_SECONDS) as response:
            body: bytes = response.read(MAX_CERTIFICATE_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise PeerError(f"SNS certificate host answered {error.code}") from None
        raise SnsRejected(f"SNS certificate host answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise PeerError(f"cannot fetch the SNS signing certificate: {error}") from None
    if len(body) > MAX_CERTIFICATE_BYTES:
        raise SnsRejected("signing certificate is too large")
    return body


SubscriptionConfirmer = Callable[[str], None]


def https_subscription_confirmer(url: str) -> None:
    """Confirm a subscription by GETting its (verified) SubscribeURL, as AWS documents:
    https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html

    The URL is checked again here (https, SNS host, no redirects followed). Network trouble
    and 5xx answers raise :class:`PeerError` (SNS re-sends the confirmation); a 4xx (an
    expired token) raises :class:`SnsRejected`.
    """
    check_subscribe_url(url)
    request = urllib.request.Request(url)  # noqa: S310 - https only, host checked above
    try:
        with _OPENER.open(request, timeout=CERTIFICATE_TIMEOUT_SECONDS) as response:
            response.read(MAX_CERTIFICATE_BYTES)
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise PeerError(f"SNS answered {error.code} to the subscription confirmation") from None
        raise SnsRejected(f"SNS answered {error.code} to the subscription confirmation") from None
    except (urllib.error.URLError, OSError) as error:
        raise PeerError(f"cannot confirm the SNS subscription: {error}") from None
