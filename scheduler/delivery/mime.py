"""Build the MIME message for one reminder email (stdlib ``email`` only; pure).

The result is ``multipart/alternative`` with a UTF-8 text part then an HTML part (RFC 2046
§5.1.4: the last part is the preferred one). Bodies are 7bit when they are ASCII with short
lines and quoted-printable or base64 otherwise, so every line stays within RFC 5322 §2.1.1's
limits (78 recommended, 998 hard) and SES's Raw rule of lines up to 1,000 characters
(https://docs.aws.amazon.com/ses/latest/dg/send-email-raw.html).

Header order is fixed: From, Reply-To, To, Subject, Date, Message-ID, List-Unsubscribe,
List-Unsubscribe-Post, Auto-Submitted, then any extra headers. ``List-Unsubscribe`` comes
before ``List-Unsubscribe-Post`` as AWS's one-click guidance asks
(https://aws.amazon.com/blogs/messaging-and-targeting/using-one-click-unsubscribe-with-amazon-ses/),
and it carries one HTTPS URI (RFC 8058 §3.1).

Opaque ASCII headers (the unsubscribe pair, extras) are written verbatim: the stdlib's
folder would otherwise turn a long unbroken URL into RFC 2047 encoded-words, which mail
receivers do not decode in ``List-Unsubscribe``.
"""

from __future__ import annotations

import email.contentmanager
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from scheduler.clock import utc
from scheduler.errors import InvalidInput


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry, minus its cost: ``HeaderRegistry.__getitem__`` builds a new
    class with ``type()`` for every header it parses (about 17 per message here), which was
    a tenth of the MIME time in ``bench/send.py``. The classes it builds are stateless, so
    one per header name gives identical headers."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, Any] = {}

    def map_to_type(self, name: str, cls: Any) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


# 7bit: non-ASCII bodies get quoted-printable/base64 rather than raw 8bit, which not every
# hop accepts. refold_source "none": headers we store as raw strings are emitted as given.
POLICY: Final = SMTP.clone(
    cte_type="7bit", refold_source="none", header_factory=_CachingHeaderRegistry()
)

HARD_LINE_LIMIT: Final = 998  # RFC 5322 §2.1.1, excluding CRLF
ONE_CLICK: Final = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1, the single key/value pair
_RESERVED: Final = frozenset(
    name.lower()
    for name in (
        "From", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID",
        "List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding", "Return-Path", "Sender",
    )
)  # fmt: skip
_HEADER_NAME: Final = re.compile(r"^[!-9;-~]+$")  # RFC 5322 §2.2: printable ASCII but ":"
_PRINTABLE_ASCII: Final = re.compile(r"^[ -~]*$")
_MESSAGE_REF: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DOMAIN: Final = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                            r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")  # fmt: skip
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_NO_EXTRA_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


class HeaderInjection(InvalidInput):
    """A header value contains CR or LF, which would start a new header or the body."""


def build_message(
    *,
    from_addr: str,
    reply_to: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    unsubscribe_url: str,
    message_ref: str,
    domain: str,
    now: datetime,
    extra_headers: Mapping[str, str] = _NO_EXTRA_HEADERS,
) -> EmailMessage:
    """Assemble the reminder email; see the module docstring for layout and order."""
    values = {"From": from_addr, "Reply-To": reply_to, "To": to, "Subject": subject}
    for name, value in values.items():
        _refuse_line_breaks(name, value)
    # Parsed once, checked, then stored as parsed: header parsing is most of the cost.
    # From and Reply-To are the topic's, the same for every message: folded once per process.
    from_header = _topic_address_header("From", from_addr)
    reply_to_header = _topic_address_header("Reply-To", reply_to)
    to_header = _address_header("To", to)
    _refuse_line_breaks("List-Unsubscribe", unsubscribe_url)
    _require_unsubscribe_url(unsubscribe_url)
    _require_message_id_parts(message_ref, domain)
    _check_extra_headers(extra_headers)

    msg = EmailMessage(policy=POLICY)
    msg.set_raw("From", from_header)
    msg.set_raw("Reply-To", reply_to_header)
    msg["To"] = to_header
    msg["Subject"] = subject
    # Short ASCII values we produce and have checked: stored raw, they skip the header
    # parser and the folder (the generator emits them as given).
    msg.set_raw("Date", format_datetime(utc(now)))
    msg.set_raw("Message-ID", f"<{message_ref}@{domain}>")
    msg.set_raw("List-Unsubscribe", f"<{unsubscribe_url}>")
    msg.set_raw("List-Unsubscribe-Post", ONE_CLICK)
    # RFC 3834 §5: mail generated by a program, so auto-responders should not answer it.
    msg.set_raw("Auto-Submitted", "auto-generated")
    for name, value in extra_headers.items():
        msg.set_raw(name, value)
    msg.set_raw("MIME-Version", "1.0")
    _attach_bodies(msg, text=text, html=html)
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    """The message as it goes on the wire: CRLF line endings throughout."""
    return msg.as_bytes(policy=POLICY)


def _attach_bodies(msg: EmailMessage, *, text: str, html: str) -> None:
    parts = [_text_part(text, "plain"), _text_part(html, "html")]
    # Our own boundary, checked against the encoded parts. Left to itself the generator
    # picks one and compiles a regular expression per message to check it, which was a
    # fifth of the MIME time in bench/send.py.
    boundary = _boundary([str(part.get_payload()) for part in parts])
    # Parsed once and stored parsed: the generator reads this header several times.
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    for part in parts:
        msg.attach(part)


# The stdlib's own choice of transfer encoding for a text part (7bit when it can, else
# quoted-printable or base64, whichever is shorter), without set_content's header
# round-trips, which cost four times the encoding itself. It is private to
# email.contentmanager (unchanged since Python 3.6); without it we use set_content, and
# tests/unit/test_mime.py checks that both produce the same part.
_encode_text: Final[Any] = getattr(email.contentmanager, "_encode_text", None)
_TEXT_TYPES: Final = {
    subtype: POLICY.header_factory("Content-Type", f'text/{subtype}; charset="utf-8"')
    for subtype in ("plain", "html")
}
_TRANSFER_ENCODINGS: Final = {
    cte: POLICY.header_factory("Content-Transfer-Encoding", cte)
    for cte in ("7bit", "8bit", "quoted-printable", "base64")
}


def _text_part(body: str, subtype: str, *, fast: bool = True) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    if not fast or _encode_text is None:
        part.set_content(body, subtype=subtype, charset="utf-8")
        del part["MIME-Version"]  # set_content adds it; RFC 2045 wants it at the top only
        return part
    cte, payload = _encode_text(body, "utf-8", None, POLICY)
    part["Content-Type"] = _TEXT_TYPES[subtype]
    part["Content-Transfer-Encoding"] = _TRANSFER_ENCODINGS[cte]
    part.set_payload(payload)
    return part


def _boundary(payloads: list[str]) -> str:
    """A random boundary that occurs in no payload (RFC 2046 §5.1.1). "=_" cannot occur
    in quoted-printable or base64 output, and 128 random bits make a clash in 7bit text
    a practical impossibility; the check makes it an actual one."""
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(boundary in payload for payload in payloads):
            return boundary


def _refuse_line_breaks(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjection(f"{name} must not contain CR, LF or NUL", field=name)


def _address_header(name: str, value: str) -> Any:
    """The parsed header, if it holds exactly one well-formed address (the stdlib
    parser's own view, defects included); ``InvalidInput`` otherwise."""
    try:
        header = POLICY.header_factory(name, value)
        addresses = list(getattr(header, "addresses", ()))
        well_formed = not header.defects and len(addresses) == 1 and bool(addresses[0].domain)
    except (IndexError, ValueError, TypeError):  # the stdlib parser trips on e.g. "x@"
        well_formed = False
    if not well_formed:
        raise InvalidInput(f"{name} must be one email address, got {value!r}", field=name)
    return header


@lru_cache(maxsize=64)
def _topic_address_header(name: str, value: str) -> str:
    """A topic's From or Reply-To, checked, parsed and folded once per process; stored raw,
    the generator writes it as folded here (the same bytes it would produce itself)."""
    folded = str(_address_header(name, value).fold(policy=POLICY))
    return folded[len(name) + 2 :].removesuffix(POLICY.linesep)


def _require_unsubscribe_url(url: str) -> None:
    """RFC 8058 §3.1: one HTTPS URI. Plain http only for a loopback host (local runs)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or not host or not _PRINTABLE_ASCII.match(url) or " " in url:
        raise InvalidInput(f"not an absolute ASCII URL: {url!r}", field="unsubscribe_url")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK_HOSTS):
        raise InvalidInput("the unsubscribe URL must use https", field="unsubscribe_url")
    if len(url) + len("List-Unsubscribe: <>") > HARD_LINE_LIMIT:
        raise InvalidInput("the unsubscribe URL is too long for one line", field="unsubscribe_url")


def _require_message_id_parts(message_ref: str, domain: str) -> None:
    if not _MESSAGE_REF.match(message_ref):
        raise InvalidInput("message_ref must be 1-128 of [A-Za-z0-9._-]", field="message_ref")
    if not _DOMAIN.match(domain):
        raise InvalidInput(f"not a domain name: {domain!r}", field="domain")


def _check_extra_headers(extra_headers: Mapping[str, str]) -> None:
    for name, value in extra_headers.items():
        _refuse_line_breaks(name, value)
        if not _HEADER_NAME.match(name):
            raise InvalidInput(f"not a header name: {name!r}", field="extra_headers")
        if name.lower() in _RESERVED:
            raise InvalidInput(f"{name} is set by build_message", field="extra_headers")
        if not _PRINTABLE_ASCII.match(value) or len(name) + 2 + len(value) > HARD_LINE_LIMIT:
            raise InvalidInput(
                f"{name} must be printable ASCII within one line", field="extra_headers"
            )
