"""Shared test fixtures: where the real EMDB data lives, and skipping cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $NEMAP_SHARED_DATA); skips the test, with the reason, when absent."""
    if not (SHARED_DATA / "INDEX.md").is_file():
        pytest.skip(f"real-data test: {SHARED_DATA} not found (set NEMAP_SHARED_DATA)")
    return SHARED_DATA
