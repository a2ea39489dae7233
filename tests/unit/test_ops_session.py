"""Signed operator sessions, CSRF secrets and the origin check (``web.ops_session``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.delivery.tokens import TokenSigner
from scheduler.web.ops_session import OpsSession, SessionCodec, origin_of, same_origin

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
KEY = "ops-test-signing-key-0123456789"
OURS = {"http://127.0.0.1:8000"}


def test_a_session_round_trips_with_its_key_id_and_csrf_secret() -> None:
    codec = SessionCodec([KEY])
    session = OpsSession.fresh("abc123")
    value = codec.dumps(session, NOW)
    assert codec.loads(value, NOW + timedelta(hours=11)) == session
    assert "abc123" in codec.loads(value, NOW).key_id  # type: ignore[union-attr]


def test_a_session_without_a_key_is_a_login_form_session() -> None:
    codec = SessionCodec([KEY])
    loaded = codec.loads(codec.dumps(OpsSession.fresh(), NOW), NOW)
    assert loaded is not None and loaded.key_id is None and len(loaded.csrf) >= 32


@pytest.mark.parametrize(
    "value",
    [None, "", "garbage", "eyJjIjoieCJ9.AAAAAA.bad-signature"],
)
def test_missing_or_forged_cookies_are_no_session(value: str | None) -> None:
    assert SessionCodec([KEY]).loads(value, NOW) is None


def test_a_tampered_payload_is_refused() -> None:
    codec = SessionCodec([KEY])
    value = codec.dumps(OpsSession("secret", "abc123"), NOW)
    payload, rest = value.split(".", 1)
    forged = SessionCodec(["another-key-0123456789abcdef"]).dumps(OpsSession("x", "root"), NOW)
    assert codec.loads(forged, NOW) is None
    assert codec.loads(forged.split(".", 1)[0] + "." + rest, NOW) is None
    assert codec.loads(payload + "." + rest, NOW) is not None  # the untouched value loads


def test_a_session_expires_after_its_max_age() -> None:
    codec = SessionCodec([KEY], max_age=timedelta(hours=12))
    value = codec.dumps(OpsSession.fresh("abc123"), NOW)
    assert codec.loads(value, NOW + timedelta(hours=12, seconds=1)) is None


def test_other_tokens_signed_with_the_same_keys_are_not_sessions() -> None:
    """A preference-page token is signed with the same keys: the salt keeps it apart."""
    link = TokenSigner([KEY], max_age=timedelta(days=1)).sign_preferences("r1", now=NOW)
    assert SessionCodec([KEY]).loads(link, NOW) is None


def test_sessions_survive_key_rotation_while_the_old_key_is_listed() -> None:
    old = SessionCodec(["old-signing-key-0123456789"]).dumps(OpsSession.fresh("k1"), NOW)
    rotated = SessionCodec(["new-signing-key-0123456789", "old-signing-key-0123456789"])
    assert rotated.loads(old, NOW) is not None
    assert SessionCodec(["new-signing-key-0123456789"]).loads(old, NOW) is None


def test_csrf_comparison() -> None:
    session = OpsSession("the-secret", "k1")
    assert session.accepts("the-secret")
    assert not session.accepts("the-secreT")
    assert not session.accepts("")
    assert not session.accepts(None)


def test_fresh_sessions_have_distinct_secrets() -> None:
    assert OpsSession.fresh().csrf != OpsSession.fresh().csrf


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8000"}, True),
        ({"sec-fetch-site": "same-site"}, False),
        ({"sec-fetch-site": "cross-site", "origin": "http://127.0.0.1:8000"}, False),
        ({"sec-fetch-site": "none"}, False),  # a post nobody's page made
        ({"origin": "http://127.0.0.1:8000"}, True),
        ({"origin": "HTTP://127.0.0.1:8000"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({}, True),  # not a browser: the CSRF token still has to match
    ],
)
def test_same_origin(headers: dict[str, str], allowed: bool) -> None:
    assert same_origin(headers, OURS) is allowed


def test_origin_of() -> None:
    assert origin_of("https://Ops.Example.com:8443/ops?x=1") == "https://ops.example.com:8443"
    assert origin_of("null") is None
    assert origin_of("/relative") is None


def test_the_codec_needs_keys() -> None:
    with pytest.raises(ValueError, match="keys"):
        SessionCodec([])
    with pytest.raises(ValueError, match="keys"):
        SessionCodec(KEY)
