"""Shared test fixtures: where the real EMDB data lives (and skipping cleanly without it), and a small
synthetic map with its fitted neural map, made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.synthetic_maps import chain_map
from nemap.fit.options import FitOptions, options_for
from nemap.io.mrc import write_mrc
from nemap.tools.convert import mrc_to_nemap

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $NEMAP_SHARED_DATA); skips the test, with the reason, when absent."""
    if not (SHARED_DATA / "INDEX.md").is_file():
        pytest.skip(f"real-data test: {SHARED_DATA} not found (set NEMAP_SHARED_DATA)")
    return SHARED_DATA


QUICK = dict(width=64, sine_layers=2, max_steps=150, device="cpu")


def quick(**kw) -> FitOptions:
    """Small, fast fitting options for tests."""
    return options_for("siren-tiny", **{**QUICK, **kw})


@pytest.fixture(scope="session")
def small_map(tmp_path_factory) -> Path:
    """A 20×18×16 synthetic chain map (1.2 Å voxels, non-zero origin) as an MRC file."""
    grid, _ = chain_map((20, 18, 16), voxel_size=1.2, origin=(5.0, -3.0, 7.5), resolution=4.0, seed=3)
    path = tmp_path_factory.mktemp("maps") / "small.mrc"
    write_mrc(path, grid.values, grid.geometry)
    return path


@pytest.fixture(scope="session")
def fitted(small_map, tmp_path_factory) -> Path:
    """small_map fitted with 12³ regions (8 regions), 300 steps."""
    out = tmp_path_factory.mktemp("fit") / "small.nemap"
    mrc_to_nemap(small_map, out, quick(max_region_size=12, max_steps=300), progress=False, resolution=4.0)
    return out
