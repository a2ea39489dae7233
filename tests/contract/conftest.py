from __future__ import annotations

# pytest_plugins may only be declared in the rootdir conftest, so the moto fixtures are
# imported here instead; importing them is what makes pytest see them in this directory.
from tests.moto_server import moto_reset, moto_server

__all__ = ["moto_reset", "moto_server"]
