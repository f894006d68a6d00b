"""How well a peak graph's nodes sit on a model's atoms (the paper's metrics). Å throughout.

* All atoms (non-hydrogen): nodes and atoms are matched one-to-one within 1 Å, closest pairs first
  (greedy); sensitivity = matched atoms / atoms, specificity = matched nodes / nodes, RMSD over the
  matched pairs.
* Cα: coverage = Cα with a node within 3 Å / Cα; precision = nodes within 3 Å of a Cα / nodes; RMSD
  of the distance from each covered Cα to its nearest node.

Only atoms inside the map box (lo ≤ xyz ≤ hi) count; every node counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ATOM_MATCH = 1.0  # Å
CA_MATCH = 3.0  # Å


def match_one_to_one(nodes: np.ndarray, atoms: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy closest-first one-to-one pairs within ``cutoff``: (node index, atom index, distance)."""
    from scipy.spatial import cKDTree

    if not len(nodes) or not len(atoms):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist = cKDTree(nodes).sparse_distance_matrix(cKDTree(atoms), cutoff, output_type="ndarray")
    order = np.argsort(dist["v"], kind="stable")
    used_n, used_a = np.zeros(len(nodes), bool), np.zeros(len(atoms), bool)
    ni, ai, dd = [], [], []
    for k in order:
        i, j = int(dist["i"][k]), int(dist["j"][k])
        if not used_n[i] and not used_a[j]:
            used_n[i] = used_a[j] = True
            ni.append(i), ai.append(j), dd.append(float(dist["v"][k]))
    return np.asarray(ni, np.int64), np.asarray(ai, np.int64), np.asarray(dd)


def score(nodes: np.ndarray, atoms: np.ndarray, is_ca: np.ndarray, is_hydrogen: np.ndarray | None = None,
          box: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """The metrics above for nodes [N, 3] against atoms [M, 3] (masks [M])."""
    from scipy.spatial import cKDTree

    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, 3)
    keep = np.ones(len(atoms), bool) if is_hydrogen is None else ~np.asarray(is_hydrogen, bool)
    if box is not None and np.all(np.isfinite(box[0])) and np.all(np.isfinite(box[1])):
        keep &= np.all((atoms >= np.asarray(box[0]) - 1e-6) & (atoms <= np.asarray(box[1]) + 1e-6), axis=1)
    heavy, ca = atoms[keep], atoms[keep & np.asarray(is_ca, bool)]
    ni, _, dd = match_one_to_one(nodes, heavy, ATOM_MATCH)
    out: dict[str, Any] = {
        "nodes": len(nodes), "atoms_in_box": len(heavy), "ca_in_box": len(ca),
        "atom_sensitivity": len(ni) / len(heavy) if len(heavy) else float("nan"),
        "atom_specificity": len(ni) / len(nodes) if len(nodes) else float("nan"),
        "atom_rmsd": float(np.sqrt(np.mean(dd ** 2))) if len(dd) else float("nan"),
    }
    if len(ca) and len(nodes):
        d_ca, _ = cKDTree(nodes).query(ca)
        covered = d_ca <= CA_MATCH
        d_node, _ = cKDTree(ca).query(nodes)
        out.update(ca_coverage=float(covered.mean()), node_precision=float((d_node <= CA_MATCH).mean()),
                   ca_rmsd=float(np.sqrt(np.mean(d_ca[covered] ** 2))) if covered.any() else float("nan"))
    else:
        out.update(ca_coverage=float("nan"), node_precision=float("nan"), ca_rmsd=float("nan"))
    return out
