"""Render a reminder message (subject, plain text, HTML) from Jinja2 templates.

An adapter (it imports Jinja2), but with no I/O beyond reading its templates once: time is
``RenderContext.now``. What reaches a template has been made safe here first:

- HTML templates autoescape; text templates do not, so every value is cleaned of control
  characters on the way out (``_finalize``), which also keeps a title from faking lines.
- Unicode bidi embeddings/overrides/isolates are removed from user text (a title must not
  reorder what surrounds it: https://www.unicode.org/reports/tr9/ and CVE-2021-42574);
  right-to-left titles are then isolated by us (``<bdi>`` in HTML, FSI…PDI in text).
- Only ``http``/``https`` task URLs become links.
- The subject is one line (whitespace collapsed) and capped in length.

Digests: a batch of one renders ``single``; more render ``task_digest``; the
``workspace-digest`` topic always renders ``workspace_digest``. Past ``max_items`` a
digest says "and N more", where N counts ``total`` (the batch size), not just the items
passed in, so the caller may pass a truncated list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from scheduler.delivery.datetime_format import format_datetime, resolve_locale

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
WORKSPACE_DIGEST_TOPIC: Final = "workspace-digest"

_BIDI_CONTROLS: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")
_WHITESPACE_RUN: Final = re.compile(r"\s+")
# Every character of Unicode categories Cc, Zl and Zp: C0 and C1 controls, DEL, and the
# line and paragraph separators. Unicode's stability policy fixes Cc to exactly these
# 65 code points (https://www.unicode.org/policies/stability_policy.html); a regex is a
# tenth of the cost of asking unicodedata per character (tests/unit/test_render.py
# checks the two agree on every code point).
_LINE_BREAKING: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LANGUAGE_TAG: Final = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_FSI, _PDI = "\u2068", "\u2069"


@dataclass(frozen=True)
class RenderItem:
    task_title: str
    task_url: str | None
    workspace_name: str | None
    due_at: datetime | None


@dataclass(frozen=True)
class RenderContext:
    topic: str
    recipient_timezone: str
    locale: str
    items: Sequence[RenderItem]
    total: int
    unsubscribe_url: str
    preferences_url: str
    why: str
    now: datetime


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _ItemView:
    """One item as the templates see it: cleaned, localised, link decided."""

    title: str
    url: str | None
    workspace: str | None
    due: str | None
    overdue: bool


class Renderer:
    """Build once (the Jinja2 environment compiles and caches templates), render many."""

    def __init__(self, *, max_items: int = 10, subject_max_length: int = 120) -> None:
        if max_items < 1 or subject_max_length < 20:
            raise ValueError("max_items must be >= 1 and subject_max_length >= 20")
        self._max_items = max_items
        self._subject_max_length = subject_max_length
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self._env.filters["isolate"] = _isolate_for_text

    def render(self, ctx: RenderContext) -> Rendered:
        _check(ctx)
        zone = _zone(ctx.recipient_timezone)
        views = [_view(item, ctx, zone) for item in ctx.items[: self._max_items]]
        name = _template_name(ctx)
        if name == "workspace_digest":
            views.sort(key=_workspace_digest_order)
        values: dict[str, Any] = {
            "items": views,
            "total": ctx.total,
            "more": ctx.total - len(views),
            "workspace": _common_workspace(views),
            "lang": ctx.locale if _LANGUAGE_TAG.match(ctx.locale) else "en",
            "unsubscribe_url": ctx.unsubscribe_url,
            "preferences_url": ctx.preferences_url,
            "why": ctx.why,
        }
        values["subject"] = self._subject(name, views, ctx.total)
        text = self._env.get_template(f"{name}.txt").render(values)
        html = self._env.get_template(f"{name}.html").render(values)
        return Rendered(subject=values["subject"], text=text, html=html)

    def _subject(self, name: str, views: Sequence[_ItemView], total: int) -> str:
        first = views[0].title
        if name == "single":
            subject = f"Reminder: {first}"
        elif name == "task_digest":
            subject = f"{total} reminders: {first} and {total - 1} more"
        else:
            where = _common_workspace(views)
            count = f"{total} task" if total == 1 else f"{total} tasks"
            subject = f"{where}: {count}" if where else f"Your task digest: {count}"
        return clean_subject(subject, max_length=self._subject_max_length)


def clean_inline(value: str) -> str:
    """One line of user text: no control characters, no bidi overrides, runs of space
    collapsed. Emoji (including ZWJ sequences) and right-to-left letters are kept."""
    value = _BIDI_CONTROLS.sub("", value)
    value = _LINE_BREAKING.sub(" ", value)
    return _WHITESPACE_RUN.sub(" ", value).strip()


def clean_subject(value: str, *, max_length: int) -> str:
    """A subject is one line (never CR/LF) of at most ``max_length`` characters."""
    value = clean_inline(value)
    if len(value) <= max_length:
        return value
    return value[: max_length - 1].rstrip() + "…"


def is_web_url(url: str | None) -> bool:
    if not url or clean_inline(url) != url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _check(ctx: RenderContext) -> None:
    if not ctx.items:
        raise ValueError("nothing to render: no items")
    if ctx.total < len(ctx.items):
        raise ValueError("total counts every item of the batch, so it cannot be smaller")
    if ctx.now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _zone(name: str) -> ZoneInfo:
    # Timezones are validated when a recipient is registered; should one still be unknown
    # here, UTC (labelled as such) is correct information, where failing the send is not.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _view(item: RenderItem, ctx: RenderContext, zone: ZoneInfo) -> _ItemView:
    title = clean_inline(item.task_title) or "(untitled task)"
    due = overdue = None
    if item.due_at is not None:
        if item.due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        due = format_datetime(item.due_at.astimezone(zone), resolve_locale(ctx.locale))
        overdue = item.due_at < ctx.now
    return _ItemView(
        title=title,
        url=item.task_url if is_web_url(item.task_url) else None,
        workspace=(clean_inline(item.workspace_name) or None) if item.workspace_name else None,
        due=due,
        overdue=bool(overdue),
    )


def _template_name(ctx: RenderContext) -> str:
    if ctx.topic == WORKSPACE_DIGEST_TOPIC:
        return "workspace_digest"
    return "single" if ctx.total == 1 else "task_digest"


def _workspace_digest_order(view: _ItemView) -> int:
    """Overdue first, then tasks with a due time, then undated ones; stable otherwise."""
    if view.overdue:
        return 0
    return 1 if view.due is not None else 2


def _common_workspace(views: Sequence[_ItemView]) -> str | None:
    names = {v.workspace for v in views}
    return names.pop() if len(names) == 1 else None


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)


def _isolate_for_text(value: str) -> str:
    """Wrap right-to-left text in First Strong Isolate … Pop Directional Isolate so it
    cannot reorder the rest of its line in a plain-text reader."""
    return f"{_FSI}{value}{_PDI}" if _has_rtl(value) else value


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        # Preserve our own isolates (added by the `isolate` filter after cleaning).
        inner = value.removeprefix(_FSI).removesuffix(_PDI)
        if inner != value:
            return f"{_FSI}{clean_inline(inner)}{_PDI}"
        return clean_inline(value)
    return value
