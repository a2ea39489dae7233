"""Reusable pytest fixtures for a real moto server over HTTP (import them into a conftest).

``moto_server`` (session) starts ``ThreadedMotoServer`` on an ephemeral loopback port and
yields its base URL, with dummy AWS credentials in the environment so no test can reach
real AWS. ``moto_reset`` (function) clears all moto state before a test. Sent raw MIME is
read back over HTTP from ``/moto-api/data.json`` (``data["ses"]["RawMessage"]``; moto keeps
SES v2 sends in its v1 ``ses`` backend).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MOTO_REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_AWS_ENV.items():
            patch.setenv(name, value)
        # A stray profile or config file must not point boto3 anywhere else.
        patch.delenv("AWS_PROFILE", raising=False)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def moto_reset(moto_server: str) -> str:
    """Clear every moto backend, then hand back the base URL."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


def sent_raw_messages(base_url: str) -> list[str]:
    """Every raw MIME message moto's SES has accepted since the last reset, oldest first."""
    with urllib.request.urlopen(f"{base_url}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    return [message["raw_data"] for message in data.get("ses", {}).get("RawMessage", [])]
