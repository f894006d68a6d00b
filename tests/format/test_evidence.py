"""Resolution evidence in the file (spec/0.2/nemap.md §5.1): written, read back, versioned, interpolated."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import nemap
from fixtures.conformance.generate import evidence_content
from fixtures.random_nemap import random_content
from nemap.format.evidence import Evidence, local_resolution_at, pack_mask, unpack_mask
from nemap.format.validate import validate


def test_evidence_round_trips_and_makes_the_file_0_2(tmp_path) -> None:
    content = evidence_content(5)
    nemap.write(tmp_path / "e.nemap", content)
    plain = replace(content, evidence=None)
    nemap.write(tmp_path / "plain.nemap", plain)
    with nemap.open(tmp_path / "e.nemap", verify=True) as m, nemap.open(tmp_path / "plain.nemap") as p:
        assert m.version == "0.2" and p.version == "0.1"
        ev = m.evidence
        np.testing.assert_array_equal(ev.fsc_table, content.evidence.fsc_table)
        np.testing.assert_array_equal(ev.local_resolution_grid, content.evidence.local_resolution_grid)
        np.testing.assert_array_equal(m.mask(), unpack_mask(content.evidence.mask_bits, (10, 9, 7)))
        assert ev.half_maps == content.evidence.half_maps and ev.fsc == content.evidence.fsc
        assert p.evidence.fsc is None and p.mask() is None and np.isnan(p.local_resolution([[3.0, 0, 1]])).all()
        xyz = np.random.default_rng(0).uniform(0, 10, (50, 3))
        np.testing.assert_array_equal(m.evaluate(xyz)[0], p.evaluate(xyz)[0])  # evidence never changes evaluation
    assert validate(tmp_path / "e.nemap").valid


def test_mask_bits_are_c_order_msb_first() -> None:
    mask = np.zeros((2, 2, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 2] = True  # bits 0 and 11 of 12
    bits = pack_mask(mask)
    assert bits.tolist() == [0b10000000, 0b00010000]
    np.testing.assert_array_equal(unpack_mask(bits, (2, 2, 3)), mask)


def test_local_resolution_is_trilinear_over_known_nodes() -> None:
    grid = np.array([[[2.0, 4.0]], [[0.0, 8.0]]], dtype=np.float32)  # [2, 1, 2]; node (1, 0, 0) unknown
    affine = [[2.0, 0, 0, 10.0], [0, 1.0, 0, 0.0], [0, 0, 0.5, 0.0]]
    at = lambda x, y, z: local_resolution_at(grid, affine, np.array([[x, y, z]]))[0]  # noqa: E731
    assert at(10.0, 0.0, 0.0) == pytest.approx(2.0)
    assert at(10.0, 0.0, 0.25) == pytest.approx(3.0)                  # halfway between 2 and 4
    assert at(11.0, 0.0, 0.0) == pytest.approx(2.0)                   # the unknown neighbour is left out
    assert at(11.0, 0.0, 0.5) == pytest.approx((4 * 0.5 + 8 * 0.5) / 1.0)
    assert at(11.0, 0.0, 0.25) == pytest.approx((2 * 0.25 + 4 * 0.25 + 8 * 0.25) / 0.75)
    assert at(-50.0, 3.0, 9.0) == pytest.approx(4.0)                  # clamped onto the grid
    assert np.isnan(at(12.0, 0.0, 0.0)) and np.isnan(at(np.nan, 0.0, 0.0))  # only the unknown node


def test_evidence_in_a_0_1_file_is_an_error(tmp_path) -> None:
    import json

    import h5py

    nemap.write(tmp_path / "e.nemap", evidence_content(6))
    with h5py.File(tmp_path / "e.nemap", "r+") as f:
        header = json.loads(f["header"][()].decode())
        header["nemap_version"] = "0.1"
        del f["header"]
        f.create_dataset("header", data=json.dumps(header), dtype=h5py.string_dtype("utf-8"))
        f.attrs["nemap_version"] = "0.1"
    assert "EVIDENCE_INVALID" in {i.code for i in validate(tmp_path / "e.nemap").issues}


def test_a_file_without_local_grid_but_with_fsc_has_no_local_resolution(tmp_path) -> None:
    content = random_content(seed=2)
    content.evidence = Evidence(half_maps=[{"sha256": "a" * 64}, {"sha256": "b" * 64}],
                                fsc={"columns": ["frequency", "fsc"], "resolution_0143": 3.0, "resolution_05": 4.0},
                                fsc_table=np.array([[0.0, 1.0], [0.1, 0.5], [0.2, 0.1]]))
    nemap.write(tmp_path / "f.nemap", content)
    with nemap.open(tmp_path / "f.nemap") as m:
        assert m.evidence.local_resolution is None and np.isnan(m.local_resolution(np.zeros((2, 3)))).all()
        g = m.graph(3.0, sigma=1.0)
        assert "global resolution" in g.stats["edge_rule"]
