"""Build spec/0.1/examples/tiny.nemap, the worked example of spec §12, and print its numbers.

    python spec/0.1/examples/make_tiny.py [--write]

Every weight is a short binary fraction (exact in float32), so a reader can follow the
arithmetic by hand. The evaluation printed here is nemap.reference (float64).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import nemap
from nemap.format.content import Layer, NeuralMapContent, Normalization, Regions
from nemap.format.geometry import Geometry
from nemap.format.reference import evaluate

HERE = Path(__file__).resolve().parent


def tiny() -> NeuralMapContent:
    layers = [Layer(3, 2, "sine", 2.0), Layer(2, 1, "identity")]
    w0 = np.array([[[0.5, 0.0, 0.25], [0.0, -0.75, 0.0]]], dtype=np.float32)  # [1 network, out 2, in 3]
    b0 = np.array([[0.125, 0.0]], dtype=np.float32)
    w1 = np.array([[[0.5, -0.25]]], dtype=np.float32)  # [1, 1, 2]
    b1 = np.array([[0.0625]], dtype=np.float32)
    regions = Regions(
        bounds=np.array([[[0, 0, 0], [3, 3, 2]], [[2, 0, 0], [5, 3, 2]]], dtype=np.int64),
        network_index=np.array([0, -1], dtype=np.int64),
        constant_value=np.array([0.0, -0.5], dtype=np.float32),
        ramp_width=1.0,
        tiling={"method": "hand-made"},
    )
    return NeuralMapContent(
        geometry=Geometry((6, 4, 3), (2.0, 1.0, 1.0), (10.0, 0.0, -1.0)),
        normalization=Normalization(0.0, 4.0, True, 0.25, 0.125),
        regions=regions,
        layers=layers,
        weights=[w0, w1],
        biases=[b0, b1],
        resolution={"value": 3.0, "source": "user"},
        provenance={"created": "2026-11-21T00:00:00Z", "generator": {"name": "make_tiny.py", "version": "0.1"}},
    )


def trace(c: NeuralMapContent, p: np.ndarray) -> None:
    """Print every intermediate value of §9 at one point (float64)."""
    from nemap.format.reference import local_coordinates, network_forward
    from nemap.format.tiling import blend_weights

    q = c.geometry.to_index(p[None])
    print("q (index) =", q[0].tolist())
    w, dw = blend_weights(q, c.regions.bounds, c.geometry.grid_shape, c.regions.ramp_width)
    print("w =", w[0].tolist(), " dw/dq =", dw[0].tolist())
    first, last = c.regions.bounds[0]
    u, du = local_coordinates(q, first, last)
    print("region 0: u =", u[0].tolist(), " du/dq =", du.tolist())
    a0 = c.weights[0][0].astype(float) @ u[0] + c.biases[0][0]
    print("  a0 =", a0.tolist(), " h1 = sin(2 a0) =", np.sin(2 * a0).tolist())
    y0, dy0 = network_forward(u, c.layers, [W[0] for W in c.weights], [B[0] for B in c.biases])
    print("  y0 =", y0[0], " dy0/du =", dy0[0].tolist(), " dy0/dq =", (dy0[0] * du).tolist())
    y1 = float(c.regions.constant_value[1])
    ys = np.array([y0[0], y1])
    yb = (w[0] * ys).sum() / w[0].sum()
    gq = (w[0][:, None] * np.array([dy0[0] * du, np.zeros(3)]) + dw[0] * (ys - yb)[:, None]).sum(0) / w[0].sum()
    print("blended y =", yb, " dy/dq =", gq.tolist())


def main() -> None:
    content = tiny()
    path = HERE / "tiny.nemap"
    if "--write" in sys.argv:
        header = nemap.write(path, content, force=True)
        (HERE / "tiny.header.json").write_text(json.dumps(header, indent=2) + "\n")
    trace(content, np.array([15.5, 1.5, 0.5]))
    points = np.array([[15.5, 1.5, 0.5], [12.0, 2.0, 0.5], [20.0, 3.0, 1.0], [9.0, 0.0, 0.0]])
    d, g = evaluate(points, content.geometry, content.normalization, content.regions,
                    content.layers, content.weights, content.biases)
    for p, di, gi in zip(points, d, g):
        print(f"x={p.tolist()} Å  density={di!r}  gradient={gi.tolist()} per Å")


if __name__ == "__main__":
    main()
