from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from scheduler.delivery.senders import OutboxSender, OutgoingEmail
from scheduler.errors import InvalidInput, SenderMisconfigured, Throttled

RAW = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


def outgoing(ref: str = "msg-1", raw: bytes = RAW, **tags: str) -> OutgoingEmail:
    return OutgoingEmail(ref=ref, to="b@example.org", from_addr="a@example.org", raw=raw, tags=tags)


def test_outbox_writes_one_eml_per_ref_and_returns_its_id(tmp_path: Path) -> None:
    sender = OutboxSender(tmp_path / "nested" / "outbox")
    assert sender.send(outgoing("msg-1")) == "outbox-msg-1"
    assert (tmp_path / "nested" / "outbox" / "msg-1.eml").read_bytes() == RAW
    assert sorted(p.name for p in sender.directory.iterdir()) == ["msg-1.eml"]


def test_resending_the_same_ref_replaces_the_file(tmp_path: Path) -> None:
    sender = OutboxSender(tmp_path)
    sender.send(outgoing("msg-1", raw=RAW))
    sender.send(outgoing("msg-1", raw=RAW + b"again\r\n"))
    assert [p.name for p in tmp_path.iterdir()] == ["msg-1.eml"]
    assert (tmp_path / "msg-1.eml").read_bytes().endswith(b"again\r\n")


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    sender = OutboxSender(tmp_path)
    sender.send(outgoing("msg-old"))
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(Throttled, match="I/O error"):
        sender.send(outgoing("msg-new"))
    # Neither the message nor its temporary file is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["msg-old.eml"]


def test_a_crash_before_rename_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = OutboxSender(tmp_path)
    sender.send(outgoing("msg-1", raw=RAW))

    def crash(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Throttled):
        sender.send(outgoing("msg-1", raw=b"X" * 10))
    assert (tmp_path / "msg-1.eml").read_bytes() == RAW
    assert [p.name for p in tmp_path.iterdir()] == ["msg-1.eml"]


def test_unwritable_directory_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SenderMisconfigured):
        OutboxSender(blocker / "outbox").send(outgoing())


@pytest.mark.parametrize("ref", ["", "../escape", ".hidden", "a/b", "a b", "x" * 129, "é"])
def test_refs_are_safe_file_names(ref: str) -> None:
    with pytest.raises(InvalidInput):
        outgoing(ref)


@pytest.mark.parametrize(
    "tags", [{"bad name": "x"}, {"name": "a@b.c"}, {"name": ""}, {"n": "x" * 257}]
)
def test_tags_use_the_ses_alphabet(tags: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        outgoing(**tags)


def test_empty_message_is_refused() -> None:
    with pytest.raises(InvalidInput):
        outgoing(raw=b"")
