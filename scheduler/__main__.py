"""``python -m scheduler`` is the ``reminders`` command."""

from __future__ import annotations

from scheduler.cli import main

main()
