from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.tokens import InvalidToken, TokenSigner, UnsubscribeClaim
from scheduler.errors import InvalidInput

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY_NEW = "new-signing-key-0123456789abcdef"
KEY_OLD = "old-signing-key-0123456789abcdef"
KEY_FOREIGN = "someone-elses-key-0123456789abcd"
MAX_AGE = timedelta(days=60)

CLAIM = UnsubscribeClaim(
    recipient_id="rec_42",
    scope="topic",
    topic="task-reminder",
    workspace_id="ws_7",
    task_id="task_9",
    message_id=1001,
)


def signer(*keys: str, max_age: timedelta = MAX_AGE) -> TokenSigner:
    return TokenSigner(list(keys), max_age=max_age)


def test_round_trip_returns_the_same_claim() -> None:
    s = signer(KEY_NEW)
    assert s.verify(s.sign(CLAIM, now=NOW), now=NOW) == CLAIM


def test_token_is_url_safe_and_compact() -> None:
    token = signer(KEY_NEW).sign(CLAIM, now=NOW)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(token) < 160


def test_optional_ids_and_string_message_ids_survive() -> None:
    claim = UnsubscribeClaim("rec_1", "all", "workspace-digest", None, None, "msg-abc")
    s = signer(KEY_NEW)
    assert s.verify(s.sign(claim, now=NOW), now=NOW) == claim


def test_rotation_old_key_still_verifies_and_new_key_signs() -> None:
    old_token = signer(KEY_OLD).sign(CLAIM, now=NOW)
    rotated = signer(KEY_NEW, KEY_OLD)
    assert rotated.verify(old_token, now=NOW) == CLAIM
    new_token = rotated.sign(CLAIM, now=NOW)
    # The first key signs: a signer holding only the new key accepts it, one holding
    # only the old key does not.
    assert signer(KEY_NEW).verify(new_token, now=NOW) == CLAIM
    with pytest.raises(InvalidToken) as info:
        signer(KEY_OLD).verify(new_token, now=NOW)
    assert info.value.reason == "bad_signature"


def test_retired_key_no_longer_verifies() -> None:
    old_token = signer(KEY_OLD).sign(CLAIM, now=NOW)
    with pytest.raises(InvalidToken):
        signer(KEY_NEW).verify(old_token, now=NOW)


def test_foreign_key_is_rejected() -> None:
    token = signer(KEY_FOREIGN).sign(CLAIM, now=NOW)
    with pytest.raises(InvalidToken) as info:
        signer(KEY_NEW, KEY_OLD).verify(token, now=NOW)
    assert info.value.reason == "bad_signature"


def test_tampered_payload_is_rejected() -> None:
    s = signer(KEY_NEW)
    payload, timestamp, signature = s.sign(
        UnsubscribeClaim("rec_1", "all", "t", None, None, 1), now=NOW
    ).split(".")
    forged = json.dumps({"r": "rec_2", "s": "a", "t": "t", "m": 1}, separators=(",", ":"))
    forged_b64 = base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
    assert forged_b64 != payload
    with pytest.raises(InvalidToken) as info:
        s.verify(f"{forged_b64}.{timestamp}.{signature}", now=NOW)
    assert info.value.reason == "bad_signature"


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), replacement=st.sampled_from("aZ0-_"))
def test_any_single_character_change_is_rejected(position: int, replacement: str) -> None:
    s = signer(KEY_NEW)
    token = s.sign(CLAIM, now=NOW)
    index = position % len(token)
    if token[index] == replacement:
        return
    changed = token[:index] + replacement + token[index + 1 :]
    try:
        claim = s.verify(changed, now=NOW)
    except InvalidToken:
        return
    # base64 padding bits can absorb a change in the last character of a segment
    # without changing the decoded bytes; then the claim must be the original one.
    assert claim == CLAIM


def test_expiry_uses_the_now_passed_in() -> None:
    s = signer(KEY_NEW, max_age=timedelta(days=30))
    token = s.sign(CLAIM, now=NOW)
    assert s.verify(token, now=NOW + timedelta(days=30)) == CLAIM
    with pytest.raises(InvalidToken) as info:
        s.verify(token, now=NOW + timedelta(days=30, seconds=1))
    assert info.value.reason == "expired"


def test_token_from_the_future_is_rejected() -> None:
    s = signer(KEY_NEW)
    token = s.sign(CLAIM, now=NOW + timedelta(hours=1))
    with pytest.raises(InvalidToken) as info:
        s.verify(token, now=NOW)
    assert info.value.reason == "not_yet_valid"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "\u00e9\u00e9.x.y", "x" * 500])
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        signer(KEY_NEW).verify(garbage, now=NOW)


def test_invalid_token_is_invalid_input_naming_the_token() -> None:
    with pytest.raises(InvalidInput) as info:
        signer(KEY_NEW).verify("nope", now=NOW)
    assert info.value.field == "token"


def test_preference_token_round_trip() -> None:
    s = signer(KEY_NEW, KEY_OLD)
    token = s.sign_preferences("rec_42", now=NOW)
    assert s.verify_preferences(token, now=NOW + timedelta(days=1)) == "rec_42"


def test_tokens_do_not_cross_purposes() -> None:
    s = signer(KEY_NEW)
    with pytest.raises(InvalidToken):
        s.verify_preferences(s.sign(CLAIM, now=NOW), now=NOW)
    with pytest.raises(InvalidToken):
        s.verify(s.sign_preferences("rec_42", now=NOW), now=NOW)


def test_preference_token_expires() -> None:
    s = signer(KEY_NEW, max_age=timedelta(days=1))
    token = s.sign_preferences("rec_42", now=NOW)
    with pytest.raises(InvalidToken) as info:
        s.verify_preferences(token, now=NOW + timedelta(days=2))
    assert info.value.reason == "expired"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        signer(KEY_NEW).sign(CLAIM, now=datetime(2026, 3, 2, 9, 0))


@pytest.mark.parametrize(
    ("keys", "message"),
    [([], "non-empty"), (["short"], "at least"), ("a-string-not-a-list-of-keys", "sequence")],
)
def test_bad_key_configuration_is_refused(keys: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenSigner(keys, max_age=MAX_AGE)


def test_preferences_salt_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):
        TokenSigner([KEY_NEW], max_age=MAX_AGE, salt="preferences")


@pytest.mark.parametrize(
    ("scope", "workspace_id", "task_id"),
    [("task", "ws", None), ("workspace", None, "task"), ("everything", None, None)],
)
def test_claim_refuses_a_scope_without_its_id(
    scope: str, workspace_id: str | None, task_id: str | None
) -> None:
    with pytest.raises(InvalidInput):
        UnsubscribeClaim("rec", scope, "topic", workspace_id, task_id, 1)  # type: ignore[arg-type]
