"""One contract for every sender: the outbox, and SES against moto's real server over HTTP.

Each sender is paired with a way to read back what it sent (files in the outbox; the raw
MIME moto stored), so the suite checks what a mail receiver would see, headers included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from scheduler.delivery.mime import build_message, to_bytes
from scheduler.delivery.senders import OutboxSender, OutgoingEmail, Sender
from scheduler.delivery.ses import DEFAULT_CONFIGURATION_SET, SesSender, make_ses_client
from scheduler.errors import MessageRejected
from tests.moto_server import MOTO_REGION, sent_raw_messages

NOW = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
DOMAIN = "timeplanpush.com"
FROM = "Time Plan <support@timeplanpush.com>"
UNSUB = "https://app.timeplanpush.com/u/" + "Tok3n_-" * 25


@dataclass
class SenderUnderTest:
    sender: Sender
    read_back: Callable[[], list[bytes]]


def _outbox(tmp_path: Path) -> SenderUnderTest:
    directory = tmp_path / "outbox"
    return SenderUnderTest(
        sender=OutboxSender(directory),
        read_back=lambda: [p.read_bytes() for p in sorted(directory.glob("*.eml"))],
    )


def _ses(base_url: str) -> SenderUnderTest:
    client = make_ses_client(MOTO_REGION, base_url)
    client.create_email_identity(EmailIdentity=DOMAIN)
    client.create_configuration_set(ConfigurationSetName=DEFAULT_CONFIGURATION_SET)
    return SenderUnderTest(
        sender=SesSender(client),
        read_back=lambda: [raw.encode("utf-8") for raw in sent_raw_messages(base_url)],
    )


@pytest.fixture(params=["outbox", "ses"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SenderUnderTest]:
    if request.param == "outbox":
        yield _outbox(tmp_path)
    else:
        yield _ses(request.getfixturevalue("moto_reset"))


def email(
    ref: str, *, to: str = "zoe@example.org", subject: str = "Reminder: Pay rent"
) -> OutgoingEmail:
    msg = build_message(
        from_addr=FROM,
        reply_to="support@timeplanpush.com",
        to=to,
        subject=subject,
        text="Reminder\n\n- Pay rent\n",
        html="<p>Pay rent</p>\n",
        unsubscribe_url=UNSUB,
        message_ref=ref,
        domain=DOMAIN,
        now=NOW,
    )
    return OutgoingEmail(
        ref=ref,
        to=to,
        from_addr=FROM,
        raw=to_bytes(msg),
        tags={"message": ref, "topic": "task-reminder"},
    )


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=default).parsebytes(raw)  # type: ignore[return-value]


def header_names(raw: bytes) -> list[str]:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\n") if not line[:1].isspace()]


def test_sender_has_a_name(under_test: SenderUnderTest) -> None:
    assert isinstance(under_test.sender.name, str)
    assert under_test.sender.name


def test_send_returns_a_provider_id_and_the_message_arrives(under_test: SenderUnderTest) -> None:
    provider_id = under_test.sender.send(email("msg-1"))
    assert isinstance(provider_id, str)
    assert provider_id
    [raw] = under_test.read_back()
    assert parse(raw)["Message-ID"] == f"<msg-1@{DOMAIN}>"


def test_headers_arrive_intact_and_in_order(under_test: SenderUnderTest) -> None:
    under_test.sender.send(email("msg-2", subject="Reminder: Ship 👩‍💻 release"))
    [raw] = under_test.read_back()
    msg = parse(raw)
    assert msg["From"] == FROM
    assert msg["To"] == "zoe@example.org"
    assert msg["Subject"] == "Reminder: Ship 👩‍💻 release"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    names = header_names(raw)
    assert names.index("List-Unsubscribe") < names.index("List-Unsubscribe-Post")
    assert names.count("List-Unsubscribe") == 1
    assert names.count("List-Unsubscribe-Post") == 1


def test_bodies_arrive_intact(under_test: SenderUnderTest) -> None:
    under_test.sender.send(email("msg-3"))
    [raw] = under_test.read_back()
    text, html = parse(raw).iter_parts()
    assert text.get_content().replace("\r\n", "\n") == "Reminder\n\n- Pay rent\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Pay rent</p>\n"


def test_each_send_is_its_own_message_with_its_own_id(under_test: SenderUnderTest) -> None:
    first = under_test.sender.send(email("msg-4", to="a@example.org"))
    second = under_test.sender.send(email("msg-5", to="b@example.org"))
    assert first != second
    recipients = sorted(parse(raw)["To"] for raw in under_test.read_back())
    assert recipients == ["a@example.org", "b@example.org"]


def test_unknown_from_identity_is_a_rejected_message_under_ses(moto_reset: str) -> None:
    """moto's one real SendEmail error: a From identity SES does not know."""
    sender = SesSender(make_ses_client(MOTO_REGION, moto_reset))  # no identity created
    with pytest.raises(MessageRejected, match="MessageRejected"):
        sender.send(email("msg-6"))
    assert sent_raw_messages(moto_reset) == []
