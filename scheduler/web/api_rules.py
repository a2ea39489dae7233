"""``/v1/rules`` and snoozing: reminder rules of the product backend (DESIGN §5, §13).

``POST /v1/rules`` with a client-chosen ``id`` is safe to retry: the same id with the same
content answers 200 with the stored rule, the same id with other content is 409. Without
an ``id`` every POST creates a rule (the engine picks the id).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.openapi.models import Example
from sqlalchemy.exc import IntegrityError

from scheduler.errors import InvalidInput
from scheduler.rules.store import RuleIn, RulePatch, SnoozeIn
from scheduler.tables import ReminderRule
from scheduler.web.api_models import OccurrenceOut, RuleOut, RulePage
from scheduler.web.api_params import EngineApp, IdPath

router = APIRouter()

SCHEDULE_EXAMPLES: dict[str, Example] = {
    name: {
        "summary": summary,
        "value": {
            "recipient_id": "u-42",
            "task_id": "t-7",
            "topic": "task-reminder",
            "schedule": schedule,
        },
    }
    for name, summary, schedule in [
        ("once_at", "Once, at an instant", {"kind": "once", "at": "2026-03-08T09:00:00Z"}),
        (
            "once_local",
            "Once, at a local wall time",
            {"kind": "once", "local": "2026-03-08T09:00", "timezone": "Europe/Berlin"},
        ),
        ("relative", "30 minutes before the task is due", {"kind": "relative", "offset": "-PT30M"}),
        (
            "due_day",
            "On the due day at 09:00 local",
            {"kind": "relative", "on_due_day_at": "09:00"},
        ),
        (
            "recurring",
            "Every Monday and Wednesday at 09:00 New York time",
            {
                "kind": "recurring",
                "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
                "start": "2026-03-02T09:00",
                "timezone": "America/New_York",
            },
        ),
    ]
}
RuleBody = Annotated[RuleIn, Body(openapi_examples=SCHEDULE_EXAMPLES)]
OccurrenceId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/rules",
    status_code=201,
    response_model=RuleOut,
    tags=["rules"],
    summary="Create a reminder rule (idempotent with a client id)",
    responses={
        200: {"model": RuleOut, "description": "A retry: this id exists with the same content"}
    },
)
def create_rule(body: RuleBody, response: Response, app: EngineApp) -> RuleOut:
    try:
        rule, created = app.rules.create(body, now=app.now())
    except IntegrityError:
        # Two retries raced on one client id: the loser's insert hit the primary key.
        # Ask again; now it finds the winner's row and compares the content.
        if body.id is None:
            raise
        rule, created = app.rules.create(body, now=app.now())
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/rules/{rule.id}"
    return RuleOut.from_row(rule)


@router.get("/rules/{rule_id}", response_model=RuleOut, tags=["rules"], summary="Read a rule")
def get_rule(rule_id: IdPath, app: EngineApp) -> RuleOut:
    return RuleOut.from_row(app.rules.get(rule_id))


@router.patch(
    "/rules/{rule_id}",
    response_model=RuleOut,
    tags=["rules"],
    summary="Change a rule's schedule, topic or active flag",
    description="Reminders already planned under the old version and not yet sent are cancelled.",
)
def patch_rule(rule_id: IdPath, body: RulePatch, app: EngineApp) -> RuleOut:
    return RuleOut.from_row(app.rules.patch(rule_id, body, now=app.now()))


@router.delete(
    "/rules/{rule_id}",
    status_code=204,
    response_class=Response,
    tags=["rules"],
    summary="Retire a rule; reminders not yet sent are cancelled",
)
def delete_rule(rule_id: IdPath, app: EngineApp) -> Response:
    app.rules.delete(rule_id, now=app.now())
    return Response(status_code=204)


@router.get(
    "/recipients/{recipient_id}/rules",
    response_model=RulePage,
    tags=["rules"],
    summary="A recipient's rules, a page at a time",
)
def list_rules(
    recipient_id: IdPath,
    app: EngineApp,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RulePage:
    app.directory.get_recipient(recipient_id)  # 404 for an unknown recipient, not an empty page
    after = decode_cursor(cursor) if cursor else None
    rows = list(app.rules.list_for_recipient(recipient_id, after=after, limit=limit + 1))
    page, more = rows[:limit], len(rows) > limit
    return RulePage(
        items=[RuleOut.from_row(r) for r in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.post(
    "/occurrences/{occurrence_id}/snooze",
    response_model=OccurrenceOut,
    tags=["rules"],
    summary="Remind once more after N minutes",
    description="Idempotent: snoozing the same occurrence again returns the first snooze.",
)
def snooze(occurrence_id: OccurrenceId, body: SnoozeIn, app: EngineApp) -> OccurrenceOut:
    return OccurrenceOut.from_row(app.rules.snooze(occurrence_id, body, now=app.now()))


# --- cursors ------------------------------------------------------------------------
# Opaque to clients (base64url of the last id on the page), so the ordering key can change
# without breaking them. The store orders by id and continues with id > cursor: both use
# the column's collation, so pages neither skip nor repeat on either database.


def encode_cursor(rule: ReminderRule) -> str:
    return base64.urlsafe_b64encode(rule.id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("not a cursor from this API", field="cursor") from None
