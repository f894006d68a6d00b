"""Quantized maps in the engine: a sub-box or a point reads only the tiles near it, and tiles decoded on several
threads from the file are the tiles decoded one by one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nemap
from fixtures.conformance.generate import quantized_content
from nemap.format.kinds import voxel_codec
from nemap.format.kinds.quantized import tile_box, tile_grid

SHAPE = (96, 24, 16)  # tiles of 8³: 12 × 3 × 2


@pytest.fixture(scope="module")
def tiled(tmp_path_factory) -> tuple[nemap.NeuralMapContent, object]:
    content = quantized_content(SHAPE, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), seed=7)
    path = tmp_path_factory.mktemp("quantized") / "tiled.nemap"
    nemap.write(path, content)
    return content, path


def _tiles_read(m: nemap.NeuralMap) -> list[int]:
    """Install a counter on the map's partial reads (before its tiles are first used); returns the list it fills
    with tile indices."""
    read: list[int] = []
    original = m._read_bytes

    def counting(dataset: str, start: int, stop: int) -> bytes:
        read.append(int(np.searchsorted(m.quantized.offsets, start, side="right")) - 1)
        return original(dataset, start, stop)

    m._read_bytes = counting
    return read


def test_a_sub_box_on_the_voxels_reads_only_its_tiles(tiled) -> None:
    _, path = tiled
    with nemap.open(path, verify=False) as m:
        read = _tiles_read(m)
        box = m.sample(origin=(10.0, 17.0, 3.0), shape=(5, 6, 4))  # voxels x 10–14, y 17–22, z 3–6
    assert read == [int(np.ravel_multi_index((1, 2, 0), (12, 3, 2)))]  # tile (1, 2, 0) holds all of them
    assert np.isfinite(box.values).all()


def test_a_point_reads_only_the_tiles_near_it(tiled, monkeypatch) -> None:
    """Coefficients block by block (as for a map over 256³): a point reads the tiles within the margin."""
    from nemap.engine.kinds import quantized as engine_quantized

    _, path = tiled
    point = [[2.3, 3.7, 4.1]]
    with nemap.open(path) as m:
        exact = m.evaluate(point)  # the whole grid's coefficients
    monkeypatch.setattr(engine_quantized, "WHOLE_GRID_VOXELS", 0)
    monkeypatch.setattr(engine_quantized, "BLOCK", 16)
    with nemap.open(path, verify=False) as m:
        read = _tiles_read(m)
        d, g = m.evaluate(point)
    columns = {int(np.unravel_index(t, (12, 3, 2))[0]) for t in read}
    assert columns == {0, 1, 2, 3, 4}  # block x 0–15 and its margin of 24 voxels: x < 40
    np.testing.assert_allclose(d, exact[0], rtol=0, atol=1e-8 * np.abs(exact[0]).max())
    np.testing.assert_allclose(g, exact[1], rtol=0, atol=1e-8 * np.abs(exact[1]).max())


def test_tiles_decoded_on_threads_from_the_file_are_the_tiles_decoded_one_by_one(tiled) -> None:
    content, path = tiled
    q = content.quantized
    step = q.member["step"]
    serial = np.empty(SHAPE)
    for t in range(int(np.prod(tile_grid(SHAPE, q.tile_shape)))):
        box = tile_box(t, SHAPE, q.tile_shape)
        serial[box] = step * voxel_codec.decode_tile(q.tile_bytes(t), tuple(s.stop - s.start for s in box))
    with nemap.open(path) as m:  # HDF5 is not thread-safe: reads stay on this thread while tiles decode on many
        threads: set[str] = set()
        original = m._read_bytes

        def noting(dataset: str, start: int, stop: int) -> bytes:
            threads.add(threading.current_thread().name)
            return original(dataset, start, stop)

        m._read_bytes = noting
        values = m.sample().values
    assert threads == {threading.current_thread().name}
    assert np.allclose(values, serial, rtol=0, atol=1e-5 * np.abs(serial).max())
