from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from scheduler.delivery.datetime_format import format_datetime, resolve_locale
from scheduler.delivery.render import (
    RenderContext,
    Renderer,
    RenderItem,
    clean_inline,
    clean_subject,
    is_web_url,
)

NOW = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
UNSUB = "https://app.timeplanpush.com/u/TOKEN123"
PREFS = "https://app.timeplanpush.com/preferences/PREF456"
WHY = "you asked Time Plan to remind you about this task"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(max_items=3, subject_max_length=80)


def task(title: str = "Pay rent", **kwargs: object) -> RenderItem:
    values: dict[str, object] = {
        "task_title": title,
        "task_url": "https://app.timeplanpush.com/t/1",
        "workspace_name": "Home",
        "due_at": datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
    }
    values.update(kwargs)
    return RenderItem(**values)  # type: ignore[arg-type]


def context(items: list[RenderItem], **kwargs: object) -> RenderContext:
    values: dict[str, object] = {
        "topic": "task-reminder",
        "recipient_timezone": "Europe/Berlin",
        "locale": "en-GB",
        "items": items,
        "total": len(items),
        "unsubscribe_url": UNSUB,
        "preferences_url": PREFS,
        "why": WHY,
        "now": NOW,
    }
    values.update(kwargs)
    return RenderContext(**values)  # type: ignore[arg-type]


def test_single_reminder(renderer: Renderer) -> None:
    out = renderer.render(context([task()]))
    assert out.subject == "Reminder: Pay rent"
    assert "Due 9 Mar 2026, 10:00 CET" in out.text
    assert "Due 9 Mar 2026, 10:00 CET" in out.html
    assert '<a href="https://app.timeplanpush.com/t/1"' in out.html
    assert "https://app.timeplanpush.com/t/1" in out.text


def test_footer_says_why_and_links_unsubscribe_and_preferences(renderer: Renderer) -> None:
    out = renderer.render(context([task()]))
    for body in (out.text, out.html):
        assert WHY in body
        assert UNSUB in body
        assert PREFS in body
    assert f'<a href="{UNSUB}"' in out.html
    assert f'<a href="{PREFS}"' in out.html


def test_script_in_title_is_escaped_in_html_and_subject_stays_text(renderer: Renderer) -> None:
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    out = renderer.render(context([task(title)]))
    assert "<script" not in out.html
    assert "<img" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in out.html
    assert title in out.text  # plain text is not HTML: shown verbatim, harmless
    assert out.subject == f"Reminder: {title}"


def test_crlf_in_title_cannot_add_lines_or_headers(renderer: Renderer) -> None:
    title = "Pay rent\r\nBcc: victim@example.org\r\n\r\n<b>injected</b>"
    out = renderer.render(context([task(title)]))
    assert "\r" not in out.subject
    assert "\n" not in out.subject
    assert out.subject == "Reminder: Pay rent Bcc: victim@example.org <b>injected</b>"
    assert "\nBcc:" not in out.text
    assert "\r" not in out.text
    assert "- Pay rent Bcc: victim@example.org <b>injected</b> (in Home)" in out.text


def test_emoji_survive_including_zwj_sequences(renderer: Renderer) -> None:
    title = "Ship 👩‍💻 release 🚀"
    out = renderer.render(context([task(title)]))
    assert title in out.subject
    assert title in out.text
    assert title in out.html


def test_right_to_left_title_is_isolated(renderer: Renderer) -> None:
    title = "دفع الإيجار"
    out = renderer.render(context([task(title)]))
    assert f"<bdi>{title}</bdi>" in out.html
    assert f"\u2068{title}\u2069" in out.text


def test_bidi_override_characters_are_removed(renderer: Renderer) -> None:
    # U+202E RIGHT-TO-LEFT OVERRIDE would display "exe.pdf" as "fdp.exe".
    out = renderer.render(context([task("invoice\u202efdp.exe")]))
    for part in (out.subject, out.text, out.html):
        assert "\u202e" not in part
        assert "invoicefdp.exe" in part


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://x/y", "/relative", "https://"]
)
def test_only_http_and_https_urls_become_links(renderer: Renderer, url: str) -> None:
    out = renderer.render(context([task(task_url=url)]))
    assert url not in out.text.split("-- ")[0]
    assert "javascript" not in out.html
    assert "<strong><bdi>Pay rent</bdi></strong>" in out.html


def test_task_digest_caps_items_and_says_and_n_more(renderer: Renderer) -> None:
    items = [task(f"Task {n}") for n in range(5)]
    out = renderer.render(context(items, total=7))
    assert out.subject == "7 reminders: Task 0 and 6 more"
    assert "Task 2" in out.text
    assert "Task 3" not in out.text
    assert "and 4 more" in out.text
    assert "and 4 more" in out.html


def test_digest_without_overflow_has_no_and_more(renderer: Renderer) -> None:
    out = renderer.render(context([task("A"), task("B")]))
    assert out.subject == "2 reminders: A and 1 more"
    assert "more" not in out.text.split("--")[0].replace("2 reminders", "")


def test_workspace_digest_marks_overdue_and_puts_it_first(renderer: Renderer) -> None:
    items = [
        task("Later", due_at=NOW + timedelta(days=1)),
        task("Undated", due_at=None),
        task("Late", due_at=NOW - timedelta(hours=1)),
    ]
    out = renderer.render(context(items, topic="workspace-digest"))
    assert out.subject == "Home: 3 tasks"
    assert out.text.index("Late") < out.text.index("Later") < out.text.index("Undated")
    assert "OVERDUE, was due 8 Mar 2026, 10:00 CET" in out.text
    assert "Overdue</span>" in out.html
    assert out.html.count("Overdue</span>") == 1


def test_workspace_digest_across_workspaces_names_each(renderer: Renderer) -> None:
    items = [task("A", workspace_name="Home"), task("B", workspace_name="Work")]
    out = renderer.render(context(items, topic="workspace-digest"))
    assert out.subject == "Your task digest: 2 tasks"
    assert "(in Home)" in out.text
    assert "(in Work)" in out.text


def test_workspace_digest_of_one_item_is_still_a_digest(renderer: Renderer) -> None:
    out = renderer.render(context([task()], topic="workspace-digest"))
    assert out.subject == "Home: 1 task"
    assert "Your tasks in" in out.text


@pytest.mark.parametrize(
    ("locale", "zone", "expected"),
    [
        ("en", "America/New_York", "Mar 9, 2026, 5:00 AM EDT"),
        ("en-US", "America/Los_Angeles", "Mar 9, 2026, 2:00 AM PDT"),
        ("en-GB", "Europe/London", "9 Mar 2026, 09:00 GMT"),
        ("de", "Europe/Berlin", "09.03.2026, 10:00 CET"),
        ("de-AT", "Europe/Vienna", "09.03.2026, 10:00 CET"),
        ("fr", "Europe/Paris", "09/03/2026 10:00 CET"),
        ("es", "Europe/Madrid", "09/03/2026, 10:00 CET"),
        ("pt_BR", "America/Sao_Paulo", "09/03/2026 06:00 -03"),
        ("ja", "Asia/Tokyo", "2026/03/09 18:00 JST"),
        ("xx-YY", "UTC", "Mar 9, 2026, 9:00 AM UTC"),
        ("en", "Not/AZone", "Mar 9, 2026, 9:00 AM UTC"),
    ],
)
def test_due_time_in_recipient_zone_and_locale(
    renderer: Renderer, locale: str, zone: str, expected: str
) -> None:
    out = renderer.render(context([task()], locale=locale, recipient_timezone=zone))
    assert f"Due {expected}" in out.text


def test_html_lang_attribute_is_never_injected(renderer: Renderer) -> None:
    out = renderer.render(context([task()], locale='en" onload="x'))
    assert '<html lang="en">' in out.html


def test_subject_is_capped(renderer: Renderer) -> None:
    out = renderer.render(context([task("x" * 300)]))
    assert len(out.subject) == 80
    assert out.subject.endswith("…")


def test_empty_or_inconsistent_context_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="no items"):
        renderer.render(context([]))
    with pytest.raises(ValueError, match="total"):
        renderer.render(context([task(), task()], total=1))
    with pytest.raises(ValueError, match="aware"):
        renderer.render(context([task(due_at=datetime(2026, 3, 9))]))


def test_missing_template_variable_fails_loudly() -> None:
    from jinja2 import UndefinedError

    r = Renderer()
    template = r._env.from_string("{{ nope }}")
    with pytest.raises(UndefinedError):
        template.render()


@settings(max_examples=200, deadline=None)
@given(title=st.text(max_size=200))
def test_any_title_renders_safely(title: str) -> None:
    r = _SHARED
    out = r.render(context([task(title)]))
    assert not re.search(r"[\r\n\x00-\x1f\x7f]", out.subject)
    cleaned = clean_inline(title)
    if cleaned:
        assert str(escape(cleaned)) in out.html
    # Every line the title can produce sits on the item's own line.
    assert "\r" not in out.text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out.text)


_SHARED = Renderer()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\r\nb", "a b"),
        ("  a \t b  ", "a b"),
        ("a\x00b\x1bc", "a b c"),
        ("a\u2028b", "a b"),
        ("x\u2066y\u2069", "xy"),
        ("👨‍👩‍👧", "👨‍👩‍👧"),
    ],
)
def test_clean_inline(raw: str, clean: str) -> None:
    assert clean_inline(raw) == clean


def test_clean_subject_short_is_unchanged() -> None:
    assert clean_subject("Hello", max_length=20) == "Hello"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://a.example/x", True),
        ("HTTP://a.example", True),
        ("https://a.example/\nx", False),
        ("javascript:alert(1)", False),
        ("https://[::1", False),
        (None, False),
    ],
)
def test_is_web_url(url: str | None, ok: bool) -> None:
    assert is_web_url(url) is ok


def test_resolve_locale_falls_back() -> None:
    assert resolve_locale("pt-br") == "pt-BR"
    assert resolve_locale("pt-PT") == "pt"
    assert resolve_locale("en_gb") == "en-GB"
    assert resolve_locale("en-AU") == "en"
    assert resolve_locale("") == "en"


def test_format_datetime_midnight_and_noon_in_12_hour_clock() -> None:
    assert format_datetime(datetime(2026, 1, 1, 0, 5, tzinfo=UTC), "en").startswith(
        "Jan 1, 2026, 12:05 AM"
    )
    assert "12:00 PM" in format_datetime(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "en")
    with pytest.raises(ValueError, match="aware"):
        format_datetime(datetime(2026, 1, 1), "en")


def test_the_line_breaking_class_is_exactly_unicode_cc_zl_zp() -> None:
    # clean_inline uses a character class instead of unicodedata for speed; they must agree.
    import sys
    import unicodedata

    from scheduler.delivery.render import _LINE_BREAKING

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = unicodedata.category(char) in ("Cc", "Zl", "Zp")
        assert (_LINE_BREAKING.fullmatch(char) is not None) is expected, hex(code)
