from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.mime import HeaderInjection, build_message, to_bytes
from scheduler.errors import InvalidInput

NOW = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
UNSUB = "https://app.timeplanpush.com/u/" + "T" * 180


def build(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "from_addr": "Time Plan <support@timeplanpush.com>",
        "reply_to": "support@timeplanpush.com",
        "to": "Zoë Müller <zoe@example.org>",
        "subject": "Reminder: Ship 👩‍💻 release",
        "text": "Reminder\n\n- Ship 👩‍💻 release\n",
        "html": "<p>Ship 👩‍💻 release</p>\n",
        "unsubscribe_url": UNSUB,
        "message_ref": "msg-1001",
        "domain": "timeplanpush.com",
        "now": NOW,
    }
    values.update(overrides)
    return build_message(**values)


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=default).parsebytes(raw)  # type: ignore[return-value]


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if not line.startswith(" ")]


def test_header_order() -> None:
    raw = to_bytes(build(extra_headers={"Feedback-ID": "m1001:task-reminder:timeplan"}))
    assert header_names(raw) == [
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Auto-Submitted",
        "Feedback-ID",
        "MIME-Version",
        "Content-Type",
    ]


def test_parses_back_with_every_value_intact() -> None:
    msg = parse(to_bytes(build()))
    assert msg["From"] == "Time Plan <support@timeplanpush.com>"
    assert msg["Reply-To"] == "support@timeplanpush.com"
    assert msg["To"] == "Zoë Müller <zoe@example.org>"
    assert msg["Subject"] == "Reminder: Ship 👩‍💻 release"
    assert msg["Date"] == "Sun, 08 Mar 2026 10:00:00 +0000"
    assert msg["Message-ID"] == "<msg-1001@timeplanpush.com>"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content_charset() == "utf-8"
    # Encoded text bodies carry canonical CRLF line breaks (RFC 2046 §4.1.1).
    assert text.get_content().replace("\r\n", "\n") == "Reminder\n\n- Ship 👩‍💻 release\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Ship 👩‍💻 release</p>\n"


def test_long_unsubscribe_url_is_written_verbatim_on_one_line() -> None:
    raw = to_bytes(build())
    assert f"\r\nList-Unsubscribe: <{UNSUB}>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n", 1)[0]


def test_crlf_line_endings_only() -> None:
    raw = to_bytes(build())
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert b"\r\r" not in raw


def test_mime_version_only_at_the_top() -> None:
    raw = to_bytes(build())
    assert raw.count(b"MIME-Version:") == 1


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(max_size=1000),
    html=st.text(max_size=1000),
    subject=st.text(max_size=300).filter(lambda s: "\r" not in s and "\n" not in s),
)
def test_lines_stay_within_rfc5322_and_content_round_trips(
    text: str, html: str, subject: str
) -> None:
    subject = "".join(c for c in subject if c not in "\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    raw = to_bytes(build(text=text, html=html, subject=subject))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()
    parsed = parse(raw)
    plain, rich = parsed.iter_parts()
    # Bodies round-trip up to line-ending normalisation.
    assert plain.get_content().replace("\r\n", "\n") == _normalised(text)
    assert rich.get_content().replace("\r\n", "\n") == _normalised(html)


def _normalised(body: str) -> str:
    # The stdlib splits encoded bodies on CR, LF and CRLF only (bytes.splitlines).
    lines = body.encode("utf-8", "surrogatepass").splitlines()
    return b"\n".join(lines).decode("utf-8", "surrogatepass") + "\n"


def test_long_lines_get_encoded_not_truncated() -> None:
    text = "word " * 1000
    raw = to_bytes(build(text=text, html="<p>" + "x" * 5000 + "</p>"))
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 78
    plain, rich = parse(raw).iter_parts()
    assert plain["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert plain.get_content().replace("\r\n", "\n") == text + "\n"
    assert rich.get_content().replace("\r\n", "\n") == "<p>" + "x" * 5000 + "</p>\n"


@pytest.mark.parametrize("field", ["from_addr", "reply_to", "to", "subject", "unsubscribe_url"])
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r"])
def test_line_break_in_any_header_value_is_refused(field: str, breaker: str) -> None:
    value = {
        "from_addr": "support@timeplanpush.com",
        "reply_to": "support@timeplanpush.com",
        "to": "zoe@example.org",
        "subject": "Hi",
        "unsubscribe_url": UNSUB,
    }[field]
    with pytest.raises(HeaderInjection):
        build(**{field: value + breaker + "Bcc: victim@example.org"})


def test_line_break_in_extra_header_is_refused() -> None:
    with pytest.raises(HeaderInjection):
        build(extra_headers={"X-Ref": "a\r\nBcc: victim@example.org"})


def test_header_injection_is_invalid_input() -> None:
    assert issubclass(HeaderInjection, InvalidInput)


@pytest.mark.parametrize(
    "extra",
    [
        {"Bcc": "x@example.org"},
        {"list-unsubscribe": "<https://evil.example/>"},
        {"Bad Name": "x"},
        {"X-Note": "naïve"},
        {"X-Long": "x" * 1000},
    ],
)
def test_bad_extra_headers_are_refused(extra: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        build(extra_headers=extra)


@pytest.mark.parametrize(
    "address", ["a@example.org, b@example.org", "not an address", "", "x@", "<@>"]
)
def test_recipient_must_be_one_address(address: str) -> None:
    with pytest.raises(InvalidInput):
        build(to=address)


@pytest.mark.parametrize(
    "url",
    [
        "http://app.timeplanpush.com/u/T",
        "mailto:unsubscribe@timeplanpush.com",
        "https:///u/T",
        "https://app.timeplanpush.com/u/T with space",
        "https://app.timeplanpush.com/u/ünïcode",
        "https://app.timeplanpush.com/u/" + "T" * 990,
    ],
)
def test_unsubscribe_url_must_be_one_https_uri(url: str) -> None:
    with pytest.raises(InvalidInput):
        build(unsubscribe_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/u/T", "http://localhost:8000/u/T"])
def test_plain_http_unsubscribe_url_is_allowed_on_loopback(url: str) -> None:
    assert build(unsubscribe_url=url)["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    ("ref", "domain"), [("has space", "timeplanpush.com"), ("m1", "bad_domain"), ("", "x.com")]
)
def test_message_id_parts_are_validated(ref: str, domain: str) -> None:
    with pytest.raises(InvalidInput):
        build(message_ref=ref, domain=domain)


def test_date_is_rendered_in_utc_from_any_aware_now() -> None:
    from zoneinfo import ZoneInfo

    now = datetime(2026, 3, 8, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert build(now=now)["Date"] == "Sun, 08 Mar 2026 10:00:00 +0000"


def test_stdlib_compat_parser_reads_it_too() -> None:
    msg = message_from_bytes(to_bytes(build()))
    assert msg.is_multipart()
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]  # type: ignore[union-attr]


def test_each_message_gets_its_own_boundary_absent_from_its_parts() -> None:
    first, second = (parse(to_bytes(build(text="--=_ lookalike\n"))) for _ in range(2))
    boundaries = [m.get_boundary() for m in (first, second)]
    assert boundaries[0] != boundaries[1]
    for message, boundary in zip((first, second), boundaries, strict=True):
        assert boundary is not None and boundary.startswith("=_")
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        for part in message.iter_parts():
            assert boundary not in part.get_payload()


def test_cached_sender_headers_never_leak_between_messages() -> None:
    one = parse(to_bytes(build(from_addr="A <a@timeplanpush.com>")))
    two = parse(to_bytes(build(from_addr="B <b@timeplanpush.com>")))
    again = parse(to_bytes(build(from_addr="A <a@timeplanpush.com>")))
    assert (one["From"], two["From"], again["From"]) == (
        "A <a@timeplanpush.com>",
        "B <b@timeplanpush.com>",
        "A <a@timeplanpush.com>",
    )
    with pytest.raises(InvalidInput):
        build(from_addr="not an address")
    with pytest.raises(InvalidInput):  # a refusal is never cached as a success
        build(from_addr="not an address")


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=600), subtype=st.sampled_from(["plain", "html"]))
def test_the_fast_text_part_is_the_one_set_content_builds(body: str, subtype: str) -> None:
    from scheduler.delivery.mime import POLICY, _text_part

    fast = _text_part(body, subtype).as_bytes(policy=POLICY)
    slow = _text_part(body, subtype, fast=False).as_bytes(policy=POLICY)
    assert fast == slow


def test_long_and_non_ascii_bodies_take_every_transfer_encoding() -> None:
    from scheduler.delivery.mime import POLICY, _text_part

    bodies = {"7bit": "plain ascii\n", "quoted-printable": "a long line " * 10 + "caf\u00e9\n",
              "base64": "\u65e5\u672c\u8a9e\u306e\u30bf\u30b9\u30af\n" * 20}  # fmt: skip
    for cte, body in bodies.items():
        part = _text_part(body, "plain")
        assert part["Content-Transfer-Encoding"] == cte
        assert part.as_bytes(policy=POLICY) == _text_part(body, "plain", fast=False).as_bytes(
            policy=POLICY
        )
