"""Time Plan reminder engine."""

from __future__ import annotations
