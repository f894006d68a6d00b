"""Edges by the local resolution a file carries: 2 × the local resolution at the midpoint, else the global one."""

from __future__ import annotations

import numpy as np

import nemap
from fixtures.synthetic_maps import chain_map
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.evidence import Evidence


def write_with_local(path, values: np.ndarray | None) -> None:
    grid, _ = chain_map((24, 22, 20), voxel_size=1.0, resolution=3.0, seed=4)
    content = fit_map(grid, options_for("spline"))
    if values is not None:
        g = content.geometry
        content.evidence = Evidence(local_resolution={
            "grid_shape": list(values.shape),
            "index_to_physical": [[12.0, 0, 0, g.origin[0]], [0, 11.0, 0, g.origin[1]], [0, 0, 10.0, g.origin[2]]]},
            local_resolution_grid=values.astype(np.float32))
    nemap.write(path, content)


def test_edges_follow_the_local_resolution(tmp_path) -> None:
    fine = np.full((3, 3, 3), 1.5)
    fine[1:] = 0.0  # x ≥ 12 Å: every node of the cell unknown, so the global resolution there
    write_with_local(tmp_path / "local.nemap", fine)
    write_with_local(tmp_path / "global.nemap", None)
    with nemap.open(tmp_path / "local.nemap") as m, nemap.open(tmp_path / "global.nemap") as g0:
        local, plain = m.graph(3.0, sigma=1.0), g0.graph(3.0, sigma=1.0)
        mid = 0.5 * (local.pos[local.edge_index[0]] + local.pos[local.edge_index[1]])
        limit = 2 * np.where(np.isfinite(m.local_resolution(mid)), m.local_resolution(mid), 3.0)
        assert (local.edge_length <= limit + 1e-9).all()
        assert local.edge_count < plain.edge_count and local.edge_length.max() > 3.0  # global 3 Å where unknown
        assert "local resolution" in local.stats["edge_rule"] and "global" in plain.stats["edge_rule"]
