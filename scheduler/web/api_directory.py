"""``/v1/recipients``, ``/v1/workspaces``, ``/v1/tasks``: what the product backend registers.

PUT is an idempotent upsert of the whole resource (RFC 9110 §9.3.4): repeating it changes
nothing. DELETE of a recipient is account deletion (rules retired, unsent mail cancelled,
the address erased) and is idempotent too.
https://www.rfc-editor.org/rfc/rfc9110#section-9.3.4
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from scheduler.inputs import RecipientIn, TaskIn, WorkspaceIn
from scheduler.preferences.deletion import delete_account
from scheduler.web.api_models import RecipientOut, TaskOut, WorkspaceOut
from scheduler.web.api_params import EngineApp, IdPath

router = APIRouter()


@router.put(
    "/recipients/{recipient_id}",
    response_model=RecipientOut,
    tags=["recipients"],
    summary="Register or update a recipient",
)
def put_recipient(recipient_id: IdPath, body: RecipientIn, app: EngineApp) -> RecipientOut:
    row = app.directory.upsert_recipient(recipient_id, body, now=app.now())
    return RecipientOut.from_row(row)


@router.get(
    "/recipients/{recipient_id}",
    response_model=RecipientOut,
    tags=["recipients"],
    summary="Read a recipient",
)
def get_recipient(recipient_id: IdPath, app: EngineApp) -> RecipientOut:
    return RecipientOut.from_row(app.directory.get_recipient(recipient_id))


@router.delete(
    "/recipients/{recipient_id}",
    status_code=204,
    response_class=Response,
    tags=["recipients"],
    summary="Delete the account: rules retired, unsent mail cancelled, address erased",
)
def delete_recipient(recipient_id: IdPath, app: EngineApp) -> Response:
    delete_account(app.sessions, recipient_id, now=app.now())
    return Response(status_code=204)


@router.put(
    "/workspaces/{workspace_id}",
    response_model=WorkspaceOut,
    tags=["workspaces"],
    summary="Register or rename a workspace",
)
def put_workspace(workspace_id: IdPath, body: WorkspaceIn, app: EngineApp) -> WorkspaceOut:
    return WorkspaceOut.from_row(app.directory.upsert_workspace(workspace_id, body, now=app.now()))


@router.put(
    "/tasks/{task_id}",
    response_model=TaskOut,
    tags=["tasks"],
    summary="Register or update a task",
    description="A changed due date re-plans the task's relative rules; done or deleted "
    "retires its rules and cancels reminders not yet sent.",
)
def put_task(task_id: IdPath, body: TaskIn, app: EngineApp) -> TaskOut:
    return TaskOut.from_row(app.directory.upsert_task(task_id, body, now=app.now()))


@router.get("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"], summary="Read a task")
def get_task(task_id: IdPath, app: EngineApp) -> TaskOut:
    return TaskOut.from_row(app.directory.get_task(task_id))
