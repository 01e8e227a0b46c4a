"""Fixtures shared by the data_modules tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_modules.ramp import write_ramp_videos


@pytest.fixture(scope="session")
def ramp_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The ramp videos (``tests.data_modules.ramp``), written once per session."""
    return write_ramp_videos(tmp_path_factory.mktemp("ramp"))
