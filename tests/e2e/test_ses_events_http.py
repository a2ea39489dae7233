"""``POST /ses/events`` over real HTTP (uvicorn on 127.0.0.1, port 0), both dialects.

SNS messages are signed here with a generated RSA key and a self-signed certificate; the
app's certificate fetcher is replaced by one that hands out that certificate (production
code has no switch that skips verification). moto's own SNS HTTP deliveries carry a fake
signature, so they cannot be used for this.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from scheduler.delivery.ses_events import VALIDATION_NOTICE
from scheduler.web.app import create_web_app

TOPIC = "arn:aws:sns:us-east-1:123456789012:timeplan-ses-events"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425f004aed"
)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
KEYS = ("Message", "MessageId", "Subject", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def sign(message: dict[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Sign like SNS (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html)."""
    notification = message["Type"] == "Notification"
    names = [
        k for k in KEYS if k in message and not (notification and k in ("SubscribeURL", "Token"))
    ]
    data = "".join(f"{k}\n{message[k]}\n" for k in names).encode()
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = key.sign(data, padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def notification(
    event: str,
    key: rsa.RSAPrivateKey,
    *,
    message_id: str = "sns-msg-1",
    topic: str = TOPIC,
    version: str = "2",
    **extra: str,
) -> dict[str, str]:
    return sign(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": event,
            "Timestamp": "2026-03-02T09:00:00.000Z",
            "SignatureVersion": version,
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            **extra,
        },
        key,
    )


def confirmation(key: rsa.RSAPrivateKey, *, topic: str = TOPIC) -> dict[str, str]:
    return sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sns-confirm-1",
            "TopicArn": topic,
            "Token": "2336412f37fb687f5d51e6e2425f004aed",
            "SubscribeURL": SUBSCRIBE_URL,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "Timestamp": "2026-03-02T08:00:00.000Z",
            "SignatureVersion": "1",
            "SigningCertURL": CERT_URL,
        },
        key,
    )


def complaint_event(address: str = "ada@example.com") -> str:
    data = json.loads((FIXTURES / "event-complaint.json").read_text())
    data["mail"]["destination"] = [address]
    data["complaint"]["complainedRecipients"] = [{"emailAddress": address}]
    return json.dumps(data)


class LiveServer:
    """uvicorn in a thread on an ephemeral loopback port."""

    def __init__(self, web: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(web, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        ready = threading.Event()
        while not self.server.started:  # readiness poll, not a timing assumption
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            ready.wait(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def post(
        self, path: str, body: dict[str, str] | bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], str]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "text/plain; charset=UTF-8"}
        if isinstance(body, dict):  # what real SNS sends alongside the body
            sent |= {
                "x-amz-sns-message-type": body.get("Type", ""),
                "x-amz-sns-message-id": body.get("MessageId", ""),
                "x-amz-sns-topic-arn": body.get("TopicArn", ""),
            }
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers=sent | (headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response), response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, json.load(error), error.headers["Content-Type"]


class Confirmations:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> None:
        self.urls.append(url)


@pytest.fixture
def app(make_app: Any, signing_key: rsa.RSAPrivateKey) -> Any:
    app = make_app(T0, sns_topic_arns=TOPIC)
    pem = certificate(signing_key)
    app.sns_certificate_fetcher = lambda url: pem if url == CERT_URL else b""
    app.sns_confirmer = Confirmations()
    return app


@pytest.fixture
def server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(create_web_app(app)) as live:
        yield live


def count(app: Any, table: str) -> int:
    with app.sessions() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored_state(app: Any) -> tuple[int, ...]:
    return tuple(count(app, t) for t in ("ses_event", "suppression", "send_day", "preference"))


def register(app: Any, at: datetime) -> None:
    app.directory.upsert_recipient("r1", {"email": "Ada@Example.com", "timezone": "UTC"}, now=T0)
    app.directory.upsert_workspace("w1", {"name": "Launch"}, now=T0)
    app.directory.upsert_task(
        "t1",
        {"workspace_id": "w1", "title": "Ship it", "due_at": (at + timedelta(hours=3)).isoformat()},
        now=T0,
    )
    app.rules.create(
        {
            "id": "rule-1",
            "recipient_id": "r1",
            "task_id": "t1",
            "topic": "task-reminder",
            "schedule": {"kind": "once", "at": at.isoformat()},
        },
        now=T0,
    )


def test_a_signed_complaint_suppresses_and_blocks_the_next_occurrence(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    at = T0 + timedelta(hours=1)
    register(app, at)
    status, body, content_type = server.post(
        "/ses/events", notification(complaint_event(), signing_key)
    )
    assert (status, body["status"], body["kind"]) == (200, "stored", "complaint")
    assert content_type.startswith("application/json")
    assert count(app, "suppression") == 1

    app.pipeline.tick(at)
    with app.sessions() as session:
        status_, layer, reason = session.execute(
            text("SELECT status, layer, reason FROM occurrence")
        ).one()
    assert (status_, layer) == ("blocked", "suppression")
    assert "complaint" in reason
    assert count(app, "message") == 0  # and no mail, certainly no "you unsubscribed" mail


def test_a_replay_answers_200_and_changes_nothing(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    signed = notification(complaint_event(), signing_key, version="1")
    assert server.post("/ses/events", signed)[1]["status"] == "stored"
    before = stored_state(app)
    status, body, _ = server.post("/ses/events", signed)
    assert (status, body["status"]) == (200, "duplicate")
    assert stored_state(app) == before


def tamper(message: dict[str, str]) -> dict[str, str]:
    return {**message, "Message": complaint_event("someone-else@example.com")}


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("forged", lambda key, other: tamper(notification(complaint_event(), key))),
        ("wrong key", lambda key, other: notification(complaint_event(), other)),
        ("wrong topic", lambda key, other: notification(complaint_event(), key, topic=OTHER_TOPIC)),
        (
            "bad cert url",
            lambda key, other: sign(
                {
                    **notification(complaint_event(), key),
                    "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
                },
                key,
            ),
        ),
        (
            "s3 cert url",
            lambda key, other: sign(
                {
                    **notification(complaint_event(), key),
                    "SigningCertURL": "https://s3.amazonaws.com/bucket/SimpleNotificationService.pem",
                },
                key,
            ),
        ),
    ],
)
def test_refused_messages_store_nothing(
    case: str, build: Any, app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body, content_type = server.post("/ses/events", build(signing_key, other))
    assert status == 403, case
    assert content_type == "application/problem+json"
    assert body["status"] == 403 and body["title"] == "Forbidden"
    assert stored_state(app) == (0, 0, 0, 0)


def test_headers_that_contradict_the_body_are_refused(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    signed = notification(complaint_event(), signing_key)
    status, body, _ = server.post(
        "/ses/events", signed, headers={"x-amz-sns-topic-arn": OTHER_TOPIC}
    )
    assert (status, body["field"]) == (403, "x-amz-sns-topic-arn")
    assert stored_state(app) == (0, 0, 0, 0)


def test_garbage_is_a_400(app: Any, server: LiveServer) -> None:
    status, _body, content_type = server.post("/ses/events", b"{not json")
    assert (status, content_type) == (400, "application/problem+json")
    assert stored_state(app) == (0, 0, 0, 0)


def test_a_signed_notification_that_is_no_ses_event_is_a_400(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    status, _, _ = server.post("/ses/events", notification("[1, 2, 3]", signing_key))
    assert status == 400
    assert stored_state(app) == (0, 0, 0, 0)


def test_the_validation_notice_is_acknowledged(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    status, body, _ = server.post("/ses/events", notification(VALIDATION_NOTICE, signing_key))
    assert (status, body["status"]) == (200, "ignored")
    assert stored_state(app) == (0, 0, 0, 0)


def test_subscription_confirmation_for_our_topic_only(
    app: Any, server: LiveServer, signing_key: rsa.RSAPrivateKey
) -> None:
    status, body, _ = server.post("/ses/events", confirmation(signing_key))
    assert (status, body["status"]) == (200, "confirmed")
    assert app.sns_confirmer.urls == [SUBSCRIBE_URL]
    status, _, _ = server.post("/ses/events", confirmation(signing_key, topic=OTHER_TOPIC))
    assert status == 403
    assert app.sns_confirmer.urls == [SUBSCRIBE_URL]


def test_not_configured_answers_503(make_app: Any) -> None:
    app = make_app(T0)  # no SNS_TOPIC_ARNS: the app still starts
    with LiveServer(create_web_app(app)) as live:
        status, body, content_type = live.post("/ses/events", b"{}")
    assert (status, body["title"], content_type) == (
        503,
        "Not configured",
        "application/problem+json",
    )
