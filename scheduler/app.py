"""Composition root: settings → database → sender → services. Nothing else wires parts.

``build_app`` connects nothing by itself (SQLAlchemy engines connect lazily); callers
(CLI, web, worker, tests) decide when to touch the database.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import Clock, SystemClock
from scheduler.config import Settings, load_settings
from scheduler.db import make_engine, session_factory
from scheduler.delivery.compose import Composer
from scheduler.delivery.ramp import RampStore
from scheduler.delivery.ramp_policy import Quota, RampConfig
from scheduler.delivery.render import Renderer
from scheduler.delivery.send import SendStage
from scheduler.delivery.senders import OutboxSender, Sender
from scheduler.delivery.ses_ingest import EventIngestor
from scheduler.delivery.sns import (
    CertificateFetcher,
    SubscriptionConfirmer,
    https_certificate_fetcher,
    https_subscription_confirmer,
)
from scheduler.delivery.tokens import TokenSigner
from scheduler.directory import Directory
from scheduler.keys import KeyStore
from scheduler.pipeline import Pipeline
from scheduler.preferences.store import PreferenceStore
from scheduler.rules.store import RuleStore


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    sender: Sender
    signer: TokenSigner
    directory: Directory
    rules: RuleStore
    keys: KeyStore
    pipeline: Pipeline
    preferences: PreferenceStore
    ramp: RampStore
    ses_events: EventIngestor
    # Injectable so tests sign SNS messages with their own certificate, offline.
    sns_certificate_fetcher: CertificateFetcher = https_certificate_fetcher
    sns_confirmer: SubscriptionConfirmer = https_subscription_confirmer

    def now(self) -> datetime:
        return self.clock.now()

    def tick(self, now: datetime | None = None) -> dict[str, object]:
        return self.pipeline.tick(now or self.now()).as_dict()

    def close(self) -> None:
        self.engine.dispose()


def build_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    sender: Sender | None = None,
    engine: Engine | None = None,
    worker_id: str | None = None,
) -> App:
    settings = settings or load_settings()
    engine = engine or make_engine(settings.database_url, schema=settings.database_schema)
    sessions = session_factory(engine)
    clock = clock or SystemClock()
    sender = sender or make_sender(settings)
    signer = TokenSigner(
        signing_keys(settings), max_age=timedelta(days=settings.token_max_age_days)
    )
    rules = RuleStore(sessions, min_interval=timedelta(seconds=settings.min_rule_interval_seconds))
    composer = Composer(
        renderer=Renderer(),
        signer=signer,
        base_url=settings.base_url,
        mail_domain=settings.mail_domain,
    )
    ramp = RampStore(sessions, RampConfig(), stream=settings.stream, quota=quota_reader(settings))
    send_stage = SendStage(
        sessions=sessions,
        sender=sender,
        composer=composer,
        worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
        lease=timedelta(seconds=settings.lease_seconds),
        stream=settings.stream,
        grant=ramp.grant,
        on_paused=ramp.on_stream_paused,
        concurrency=settings.send_concurrency,
    )
    pipeline = Pipeline(
        sessions=sessions,
        send_stage=send_stage,
        batch_window=timedelta(seconds=settings.batch_window_seconds),
        batch_max_items=settings.batch_max_items,
        batch_size=settings.stage_batch_size,
        expire_waiting=ramp.expire,
    )
    return App(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        sender=sender,
        signer=signer,
        directory=Directory(sessions, on_task_changed=rules.on_task_changed),
        rules=rules,
        keys=KeyStore(sessions),
        pipeline=pipeline,
        ramp=ramp,
        preferences=PreferenceStore(sessions),
        ses_events=EventIngestor(sessions, None, stream=settings.stream),
    )


def make_sender(settings: Settings) -> Sender:
    if settings.sender == "ses":
        from scheduler.delivery.ses import SesSender, make_ses_client

        client = make_ses_client(settings.ses_region, settings.aws_endpoint_url)
        return SesSender(client, configuration_set=settings.ses_configuration_set)
    return OutboxSender(settings.outbox_dir)


def quota_reader(settings: Settings) -> Callable[[], Quota | None]:
    """SES's own quota is the ramp's ceiling when we send through SES (DESIGN §9)."""
    if settings.sender != "ses":
        return lambda: None

    def read() -> Quota | None:
        from scheduler.delivery.ses import make_aws_client
        from scheduler.delivery.ses_setup import read_quota

        client = make_aws_client("sesv2", settings.ses_region, settings.aws_endpoint_url)
        return read_quota(client)

    return read


def signing_keys(settings: Settings) -> list[str]:
    """The configured keys, or for the embedded default one generated into ./var/ once."""
    keys = settings.signing_key_list
    if keys:
        return keys
    path: Path = settings.signing_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return [path.read_text().strip()]
