"""Sender contract tests: the moto fixtures come from tests/moto_server.py (root plugin)."""

from __future__ import annotations
