"""The composition root wires the ramp's ceiling to SES only when sending through SES."""

from __future__ import annotations

from pathlib import Path

from scheduler.app import quota_reader
from scheduler.config import Settings


def test_outbox_has_no_quota(tmp_path: Path) -> None:
    assert quota_reader(Settings(sender="outbox", outbox_dir=tmp_path))() is None


def test_ses_reads_the_account_quota_and_survives_a_peer_without_it(moto_server: str) -> None:
    """moto answers GetAccount with 404: the reader logs it and the ramp goes on without
    a ceiling (the reader itself is tested against Stubber in tests/e2e/test_ses_setup.py)."""
    settings = Settings(sender="ses", aws_endpoint_url=moto_server, ses_region="us-east-1")
    assert quota_reader(settings)() is None
