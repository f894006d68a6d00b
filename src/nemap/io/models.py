"""Atomic models (PDB/mmCIF, gzipped too), read with gemmi: positions in Å (x, y, z).

First model only; of alternative conformations, the first (as ChimeraX shows one per atom).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nemap.errors import FormatError, require

__all__ = ["Atoms", "read_model", "read_atoms"]


@dataclass
class Atoms:
    """xyz [N, 3] Å; atomic_number [N]; is_ca [N] (protein Cα: atom CA of element C); is_hydrogen [N];
    b_iso [N] (the B-factor column)."""

    xyz: np.ndarray
    atomic_number: np.ndarray
    is_ca: np.ndarray
    is_hydrogen: np.ndarray
    b_iso: np.ndarray


def read_model(path: str | os.PathLike, allow_empty: bool = False) -> Atoms:
    """Every atom of the first model (hydrogens, waters and ligands included). A file without atoms
    is an error unless ``allow_empty`` (a graph of no nodes written as pseudo-atoms)."""
    gemmi = require("gemmi", "models", "read atomic models")

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FormatError("no such file", path=p, code="FILE_NOT_FOUND")
    try:
        if p.endswith(".bz2"):  # gemmi reads plain and gzipped files; bzip2 is opened here
            import bz2

            text = bz2.open(p, "rt").read()
            structure = (gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
                         if p[:-4].endswith((".cif", ".mmcif")) else gemmi.read_pdb_string(text))
        else:
            structure = gemmi.read_structure(p)
    except (RuntimeError, ValueError, OSError) as exc:
        raise FormatError(f"not a readable PDB/mmCIF model ({exc})", path=p, code="BAD_MODEL") from None
    structure.remove_alternative_conformations()
    xyz, z, ca, h, b = [], [], [], [], []
    if len(structure):
        for chain in structure[0]:
            for residue in chain:
                for atom in residue:
                    xyz.append(atom.pos.tolist())
                    z.append(atom.element.atomic_number)
                    ca.append(atom.name == "CA" and atom.element.name == "C")
                    h.append(atom.element.is_hydrogen)
                    b.append(atom.b_iso)
    if not xyz and not allow_empty:
        raise FormatError("the model file has no atoms", path=p, code="BAD_MODEL")
    return Atoms(np.asarray(xyz, dtype=np.float64).reshape(-1, 3), np.asarray(z, dtype=np.float64),
                 np.asarray(ca, dtype=bool), np.asarray(h, dtype=bool), np.asarray(b, dtype=np.float64))


def read_atoms(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Positions (Å, [N, 3]) and atomic numbers [N] of every atom of the first model."""
    atoms = read_model(path)
    return atoms.xyz, atoms.atomic_number
