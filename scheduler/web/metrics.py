"""Prometheus metrics, computed from the database when scraped.

Each web app owns its ``CollectorRegistry`` (never the process-global one), so two apps in
one process (tests, ``run`` with several) never register a metric twice. State lives in the
database, so the gauges are cheap GROUP BYs at scrape time and agree across processes.

Send latency is a real histogram (cumulative counters): ``send_latency`` can be observed
by the send stage directly; until then each scrape observes the messages sent since the
previous scrape (``sent_at - window_end``: from the moment the batch closed to the
hand-off to the sender). A message committed with an older ``sent_at`` than one already
seen is missed, which a latency distribution tolerates.
https://prometheus.io/docs/concepts/metric_types/#histogram
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.tables import Message, Occurrence, Ramp, SendDay

LATENCY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600)
FIRST_LOOKBACK = timedelta(hours=1)  # the first scrape observes this much history
MAX_OBSERVED_PER_SCRAPE = 10_000


@dataclass(eq=False)  # registries key collectors by identity
class EngineCollector:
    sessions: sessionmaker[Session]
    now: Callable[[], datetime]
    send_latency: Histogram
    _watermark: datetime | None = None
    _lock: Lock = field(default_factory=Lock)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("reminders_database_up", "1 when the last scrape read the database")
        try:
            with self.sessions() as session:
                families = [*self._pipeline(session), *self._ramp(session)]
                self._observe_latency(session)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _pipeline(self, session: Session) -> list[Metric]:
        occurrences = GaugeMetricFamily(
            "reminders_occurrences",
            "Occurrences by status and deciding layer",
            labels=["status", "layer"],
        )
        query = select(col(Occurrence.status), col(Occurrence.layer), func.count()).group_by(
            col(Occurrence.status), col(Occurrence.layer)
        )
        for status, layer, count in session.execute(query):
            occurrences.add_metric([status, layer or "none"], count)
        messages = GaugeMetricFamily("reminders_messages", "Messages by status", labels=["status"])
        for status, count in session.execute(
            select(col(Message.status), func.count()).group_by(col(Message.status))
        ):
            messages.add_metric([status], count)
        return [occurrences, messages]

    def _ramp(self, session: Session) -> list[Metric]:
        today = self.now().date()
        limit = GaugeMetricFamily(
            "reminders_ramp_daily_limit",
            "Messages the ramp allows today",
            labels=["stream", "mode"],
        )
        granted = GaugeMetricFamily(
            "reminders_ramp_granted_today",
            "Messages granted by the ramp today (UTC)",
            labels=["stream"],
        )
        sent = GaugeMetricFamily(
            "reminders_ramp_sent_today", "Messages sent today (UTC)", labels=["stream"]
        )
        for ramp in session.scalars(select(Ramp)):
            limit.add_metric([ramp.stream, ramp.mode], ramp.daily_limit)
        for day in session.scalars(select(SendDay).where(col(SendDay.day) == today)):
            granted.add_metric([day.stream], day.granted)
            sent.add_metric([day.stream], day.sent)
        return [limit, granted, sent]

    def _observe_latency(self, session: Session) -> None:
        with self._lock:  # two concurrent scrapes must not observe a message twice
            since = self._watermark or self.now() - FIRST_LOOKBACK
            rows = session.execute(
                select(col(Message.sent_at), col(Message.window_end))
                .where(col(Message.sent_at) > since)
                .order_by(col(Message.sent_at))
                .limit(MAX_OBSERVED_PER_SCRAPE)
            ).all()
            for sent_at, window_end in rows:
                if sent_at is not None:  # the WHERE excludes NULL; the column type allows it
                    self.send_latency.observe(max(0.0, (sent_at - window_end).total_seconds()))
                    self._watermark = sent_at
            self._watermark = self._watermark or since


@dataclass
class Metrics:
    """The web app's registry; ``send_latency`` is public so the send stage can observe."""

    registry: CollectorRegistry
    send_latency: Histogram


def make_metrics(sessions: sessionmaker[Session], now: Callable[[], datetime]) -> Metrics:
    registry = CollectorRegistry()
    send_latency = Histogram(
        "reminders_send_latency_seconds",
        "Seconds from a batch window's close to the hand-off to the sender",
        buckets=LATENCY_BUCKETS,
        registry=None,
    )
    # Registration order is scrape order: the collector observes new sends first, so the
    # histogram collected after it already includes them.
    registry.register(EngineCollector(sessions, now, send_latency))
    registry.register(send_latency)
    return Metrics(registry=registry, send_latency=send_latency)
