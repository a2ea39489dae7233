"""The production subscription confirmer: GET the verified SubscribeURL, nothing else
(no network here: the module's opener is replaced)."""

from __future__ import annotations

import io
import urllib.error
from typing import Any

import pytest

from scheduler.delivery import sns
from scheduler.delivery.sns import SnsRejected, https_subscription_confirmer
from scheduler.errors import PeerError

SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    "&TopicArn=arn:aws:sns:eu-west-1:123456789012:t&Token=2336412f37f"
)


class FakeOpener:
    def __init__(self, outcome: bytes | Exception) -> None:
        self.outcome = outcome
        self.requests: list[Any] = []

    def open(self, request: Any, timeout: float) -> io.BytesIO:
        self.requests.append(request)
        assert timeout <= 10
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return io.BytesIO(self.outcome)


def install(monkeypatch: pytest.MonkeyPatch, outcome: bytes | Exception) -> FakeOpener:
    opener = FakeOpener(outcome)
    monkeypatch.setattr(sns, "_OPENER", opener)
    return opener


def test_confirms_with_one_get(monkeypatch: pytest.MonkeyPatch) -> None:
    opener = install(monkeypatch, b"<ConfirmSubscriptionResponse/>")
    https_subscription_confirmer(SUBSCRIBE_URL)
    [request] = opener.requests
    assert (request.get_method(), request.full_url) == ("GET", SUBSCRIBE_URL)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://evil.example/?Action=ConfirmSubscription",
        "https://sns.eu-west-1.amazonaws.com.evil.example/",
        "https://s3.amazonaws.com/bucket/x",
    ],
)
def test_refuses_anything_but_an_sns_https_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    opener = install(monkeypatch, b"")
    with pytest.raises(SnsRejected):
        https_subscription_confirmer(url)
    assert opener.requests == []


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (urllib.error.HTTPError(SUBSCRIBE_URL, 503, "x", None, None), PeerError),  # type: ignore[arg-type]
        (urllib.error.HTTPError(SUBSCRIBE_URL, 403, "x", None, None), SnsRejected),  # type: ignore[arg-type]
        (urllib.error.URLError("down"), PeerError),
        (TimeoutError("slow"), PeerError),
    ],
    ids=["5xx", "expired-token", "url-error", "timeout"],
)
def test_maps_failures(
    monkeypatch: pytest.MonkeyPatch, outcome: Exception, expected: type[Exception]
) -> None:
    install(monkeypatch, outcome)
    with pytest.raises(expected):
        https_subscription_confirmer(SUBSCRIBE_URL)
