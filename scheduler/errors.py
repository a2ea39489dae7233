"""The engine's errors: one root with ``retryable``; configuration errors stand outside it.

Adapters translate their driver's errors into these once, at the edge (SES in
``delivery/ses.py``, the database in ``db.py``), so the rest of the engine never sees
boto3 or psycopg exceptions.
"""

from __future__ import annotations


class ReminderError(Exception):
    """Root of every error the engine raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ReminderError):
    """Bad input from a caller: HTTP 422 (problem+json naming ``field``), CLI exit 2."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NotFound(ReminderError):
    """The named thing does not exist: HTTP 404, CLI exit 2."""


class Conflict(ReminderError):
    """The request contradicts stored state (e.g. a rule id reused with other content): 409."""


class PeerError(ReminderError):
    """A peer (database, SES, SQS) failed in a way that may pass: retry later."""

    retryable = True


# --- sending: the SES adapter maps provider error codes onto exactly these -------------


class SendError(ReminderError):
    """A send did not happen. Subclasses say what to do about it."""


class Throttled(SendError):
    """Rate exceeded: retry this message with backoff and jitter."""

    retryable = True


class StreamPaused(SendError):
    """Sending is paused or the account suspended: pause the stream, alert, retry later."""

    retryable = True


class MessageRejected(SendError):
    """This message can never be sent as it is: mark it failed."""


class SenderMisconfigured(SendError):
    """The sender's configuration is wrong (identity, configuration set): stop loudly."""


class ConfigurationError(Exception):
    """Settings are invalid: the process refuses to start. Deliberately outside the root."""
