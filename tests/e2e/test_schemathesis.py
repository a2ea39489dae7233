"""Property-based test of the OpenAPI document against the live API (schemathesis).

For every operation, schemathesis generates requests from the published schema (valid and
invalid), sends them with a ``rules`` key to uvicorn, and checks that no answer is a 5xx
and that every answer is documented: its status, its content type and its body schema.
Bounded: a few examples per operation, no deadline, so both databases run in well under
a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.conftest import Database
from tests.e2e.live_api import LiveApi, live_api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def live(db: Database, tmp_path: Path) -> Iterator[LiveApi]:
    # A topic allow-list, so /ses/events is live (without one it answers 503 by design).
    topic = "arn:aws:sns:us-east-1:123456789012:timeplan-ses-events"
    with live_api(db, tmp_path, sns_topic_arns=topic) as running:
        seed(running)
        yield running


def seed(running: LiveApi) -> None:
    """A few rows, so generated requests that name them reach past the 404s."""
    with running.client() as http:
        http.put("/v1/recipients/u1", json={"email": "ada@example.com"}).raise_for_status()
        http.put("/v1/workspaces/w1", json={"name": "Launch"}).raise_for_status()
        http.put(
            "/v1/tasks/t1",
            json={"workspace_id": "w1", "title": "Ship", "due_at": "2026-03-03T12:00:00Z"},
        ).raise_for_status()
        http.post(
            "/v1/rules",
            json={
                "id": "r1",
                "recipient_id": "u1",
                "task_id": "t1",
                "schedule": {"kind": "relative", "offset": "-PT30M"},
            },
        ).raise_for_status()


KNOWN_IDS = {"recipient_id": "u1", "workspace_id": "w1", "task_id": "t1", "rule_id": "r1"}
EXAMPLES = 5  # per variant; three variants: 15 requests per operation and database
VARIANTS = ("positive", "positive-known-ids", "negative")


def test_api_matches_its_openapi_document(live: LiveApi) -> None:
    """Every operation, every variant; all failures are reported together."""
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    api_schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        for variant in VARIANTS:
            strategy = operation.as_strategy(
                GenerationMode.NEGATIVE if variant == "negative" else GenerationMode.POSITIVE,
                path_parameters=_known(operation) if variant == "positive-known-ids" else None,
            )

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: Any) -> None:
                case.call_and_validate(base_url=live.base_url, headers=headers, checks=CHECKS)

            # Each part of the API with the key meant for it: ops routes with an ops key.
            key = live.ops_key if operation.path.startswith("/ops") else live.rules_key
            headers = {"Authorization": f"Bearer {key}"}

            try:
                exercise()
            except Unsatisfiable:
                continue  # no input to break: the operation takes no parameters or body
            except (Exception, BaseExceptionGroup) as exc:  # report all, then fail
                failures.append(f"{operation.label} [{variant}]: {exc}")
    assert not failures, "\n\n".join(failures)


def _known(operation: Any) -> dict[str, str]:
    names = {parameter.name for parameter in operation.path_parameters}
    return {name: value for name, value in KNOWN_IDS.items() if name in names}


def test_the_schema_is_served(live: LiveApi) -> None:
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/v1/rules" in document["paths"]
