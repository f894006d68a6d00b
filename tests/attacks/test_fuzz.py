"""Byte flips and truncations of every valid conformance fixture (hypothesis, derandomized and time-boxed):
the validator and the reader either refuse the file with a NemapError, or call it valid and evaluate it
exactly as the original when its header is unchanged (the header carries no digest, spec §10: a flipped
digit of a header number is a valid, different map). Never another exception, never a hang."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nemap

SUITE = Path(__file__).resolve().parents[2] / "src" / "nemap" / "conformance" / "suite" / "0.3"
VALID = sorted(p for p in (SUITE / "valid").glob("*/map.nemap"))
POINTS = 40


def _points(m: nemap.NeuralMap) -> np.ndarray:
    lo, hi = m.geometry.extent
    return lo + (hi - lo) * np.linspace(-0.05, 1.05, POINTS)[:, None] * np.array([1.0, 0.7, 0.4])


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


ORIGINAL = {}
for _path in VALID:
    with nemap.open(_path) as _m:
        _p = _points(_m)
        ORIGINAL[_path] = (_p, *_m.evaluate(_p), _m.header)
PEAK_BEFORE = _peak_bytes()


def _check(path: Path, damaged: Path) -> None:
    report = nemap.validate(damaged)  # never raises for a bad file
    assert report.exit_code in (0, 1, 2)
    if report.valid:
        points, density, gradient, header = ORIGINAL[path]
        with nemap.open(damaged, verify=True) as m:
            d, g = m.evaluate(points)
            same_header = m.header == header
        if same_header:
            np.testing.assert_array_equal(d, density)
            np.testing.assert_array_equal(g, gradient)
    try:
        with nemap.open(damaged) as m:  # without verify: may evaluate changed weights, but never crash
            m.evaluate(ORIGINAL[path][0])
    except nemap.NemapError:
        pass


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(VALID), where=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7),
       truncate=st.booleans())
def test_flipped_or_truncated_fixtures_are_refused_or_read_exactly(case: Path, where: float, bit: int, truncate: bool,
                                                                    tmp_path_factory) -> None:
    data = bytearray(case.read_bytes())
    at = int(where * len(data))
    if truncate:
        data = data[:at]
    else:
        data[at] ^= 1 << bit
    damaged = tmp_path_factory.mktemp("fuzz") / "map.nemap"
    damaged.write_bytes(bytes(data))
    _check(case, damaged)
    assert _peak_bytes() < PEAK_BEFORE + (1 << 30), "a damaged file made this process grow by more than 1 GiB"


def test_the_fuzz_inputs_exist() -> None:
    cases = [p for p in (SUITE / "valid").iterdir() if (p / "case.json").exists()]
    assert len(VALID) == len(cases) >= 20  # every valid case of the suite is fuzzed
    with pytest.raises(nemap.FormatError):
        empty = Path(SUITE.parent.parent / "suite_does_not_exist.nemap")
        nemap.open(empty)
