"""The tile code against the text of spec/extensions/NEMAP_quantized/README.md §3, computed here with Python
integers: classes, predictions of each order near the tile's edges, passes, and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from nemap.format.kinds import voxel_codec


def test_classes_count_the_thresholds_two_to_the_j_minus_one() -> None:
    """§3.2: the class is the number of j in 1 … C − 1 with |c − b| ≥ 2^j − 1 (thresholds 1, 3, 7 for C = 4)."""
    activity = np.array([0, 1, 2, 3, 6, 7, 100])
    assert voxel_codec.classes_of(activity, 4).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert voxel_codec.classes_of(activity, 1).tolist() == [0] * 7


def _expected(line: list[int], t: int, h: int, order: int) -> int:
    """§3.2's prediction of target t from the codes at t ± h, ± 3h, ± 5h of one line (Python integers, floor
    division as the arithmetic shift)."""
    n = len(line)

    def at(j: int) -> int | None:
        return line[t + j * h] if 0 <= t + j * h < n else None

    b, c, a3, d3, e5, f5 = at(-1), at(1), at(-3), at(3), at(-5), at(5)
    if c is None:
        return b
    if order >= 5 and None not in (a3, d3, e5, f5):
        return (150 * (b + c) - 25 * (a3 + d3) + 3 * (e5 + f5) + 128) // 256
    if order >= 3 and None not in (a3, d3):
        return (9 * (b + c) - (a3 + d3) + 8) // 16
    return (b + c) // 2


@pytest.mark.parametrize("order", [1, 3, 5])
@pytest.mark.parametrize("n", [2, 7, 16, 23])
def test_predictions_follow_the_table_of_section_3_2(order: int, n: int) -> None:
    rng = np.random.default_rng(n * 10 + order)
    line = rng.integers(-1000, 1000, n).tolist()
    known = np.asarray(line, dtype=np.int64).reshape(n, 1, 1)
    for p in voxel_codec.passes((n, 1, 1)):
        if p.axis != 0 or p.half >= n:
            continue
        lattice = known[p.known()]  # every code on this pass's lattice is known here
        prediction, activity = voxel_codec.predict(lattice, p, order)
        sub = lattice[:, 0, 0].tolist()
        targets = range(p.half, len(sub), p.stride)
        assert prediction[:, 0, 0].tolist() == [_expected(sub, t, p.half, order) for t in targets]
        assert activity[:, 0, 0].tolist() == [abs(sub[t + p.half] - sub[t - p.half]) if t + p.half < len(sub)
                                             else 0 for t in targets]


def test_passes_run_coarse_to_fine_along_x_y_z() -> None:
    """§3.2: L = ⌈log₂ max extent⌉ levels, strides 2^L … 2, axes x, y, z at each."""
    assert voxel_codec.levels((1, 1, 1)) == 0 and voxel_codec.levels((2, 1, 1)) == 1
    assert voxel_codec.levels((9, 3, 4)) == 4 and voxel_codec.levels((8, 8, 8)) == 3
    steps = [(p.stride, p.axis) for p in voxel_codec.passes((5, 2, 3))]
    assert steps == [(8, 0), (8, 1), (8, 2), (4, 0), (4, 1), (4, 2), (2, 0), (2, 1), (2, 2)]


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 9, 1), (13, 1, 7), (16, 16, 16), (5, 33, 2)])
def test_every_tile_shape_round_trips(shape) -> None:
    rng = np.random.default_rng(sum(shape))
    k = np.cumsum(rng.integers(-40, 41, shape), axis=0)
    k[tuple(rng.integers(0, n) for n in shape)] += 10**6  # one escaped residual
    assert np.array_equal(voxel_codec.decode_tile(voxel_codec.encode_tile(k), shape), k)
