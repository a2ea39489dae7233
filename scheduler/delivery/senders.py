"""The sender interface, and the outbox sender (the embedded default, DESIGN.md §7, §12).

A sender takes one finished MIME message and hands it to a provider, returning the
provider's message id. It raises only :class:`scheduler.errors.SendError` subclasses
(which say whether to retry, pause or fail), or ``InvalidInput`` for an email that is
malformed before any provider sees it. Every sender passes
``tests/contract/test_sender_contract.py``.

Delivery is at-least-once, so a sender may be asked to send the same ``ref`` twice after a
crash; the outbox makes that harmless (the second write replaces the first).
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

from scheduler.errors import InvalidInput, SenderMisconfigured, Throttled

# A ref becomes a file name and the left half of a Message-ID: keep it to a safe alphabet
# that cannot climb out of the outbox directory or hide as a dotfile.
_REF: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# SES's EmailTags alphabet, enforced for every sender so the embedded default catches a
# tag SES would refuse: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html
_TAG: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CONFIGURATION_ERRNOS: Final = frozenset({errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EROFS})


@dataclass(frozen=True)
class OutgoingEmail:
    """One finished message for one recipient. ``ref`` is our id for it (idempotency)."""

    ref: str
    to: str
    from_addr: str
    raw: bytes
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not _REF.match(self.ref):
            raise InvalidInput("ref must be 1-128 of [A-Za-z0-9._-]", field="ref")
        if not self.raw:
            raise InvalidInput("raw message is empty", field="raw")
        for name, value in self.tags.items():
            if not (_TAG.match(name) and _TAG.match(value)):
                raise InvalidInput(
                    f"tag {name!r}={value!r}: only [A-Za-z0-9_-], 1-256 characters", field="tags"
                )


class Sender(Protocol):
    name: str

    def send(self, email: OutgoingEmail) -> str:
        """Send ``email``; return the provider's message id."""
        ...


class OutboxSender:
    """Writes each message to ``<directory>/<ref>.eml``, atomically.

    The file appears complete or not at all: the bytes go to a temporary file in the same
    directory, are fsynced, then ``os.replace``d into place (atomic within one file
    system), and the directory is fsynced so the rename itself survives a crash.
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self._directory = Path(directory)
        self._directory_ready = False

    @property
    def directory(self) -> Path:
        return self._directory

    def send(self, email: OutgoingEmail) -> str:
        try:
            self._write(email)
        except OSError as exc:
            raise _outbox_error(exc) from exc
        return f"outbox-{email.ref}"

    def path_for(self, ref: str) -> Path:
        return self._directory / f"{ref}.eml"

    def _write(self, email: OutgoingEmail) -> None:
        if not self._directory_ready:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._directory_ready = True
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{email.ref}.", suffix=".tmp", dir=self._directory
        )
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(email.raw)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, self.path_for(email.ref))
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(self._directory)


def _fsync_directory(directory: Path) -> None:
    # Not every platform can open a directory (Windows cannot); there the rename is as
    # durable as the OS makes it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _outbox_error(exc: OSError) -> Exception:
    if exc.errno in _CONFIGURATION_ERRNOS:
        return SenderMisconfigured(f"outbox directory is not writable: {exc}")
    # Disk full, I/O error and the like may pass: retry later, with backoff.
    return Throttled(f"outbox write failed: {exc}")
