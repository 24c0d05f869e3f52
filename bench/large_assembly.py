"""A generated 100,000-atom assembly for the large-input benchmark, written at run time (never committed).

    .venv/bin/python bench/large_assembly.py OUT.pdb [--copies 16] [--chains 20] [--seed 1]

Copies of the bundled 1BD2 complex (T-cell receptor on HLA-A2 with its peptide, 6,339 atoms; CC0, see
examples/README.md). The first `chains - copies` copies are two chains each: the pMHC (1BD2 chains A, B, C
joined, residue numbers of B and C shifted by 1000 and 2000) and the TCR (D, E joined, E shifted by 1000), so
they keep their real TCR-pMHC interface; the other copies are one chain (all five joined, shifted alike).
Copies are packed as a docking run would pack them: each new copy, turned at random, slides from far away
towards the assembly's centre along the best of a few random directions, and stops one step before any heavy
atom comes closer than 3.5 A to an atom already placed (no clashes); the direction with the most cross-copy CA
contacts under 10 A wins. 16 copies in 20 chains (mkdssp's classic output holds at most 26): 101,424 atoms,
a few thousand interface residues, in a file as a docking program writes it (ATOM records, TER after each
chain, END).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "1BD2.pdb.gz"
CHAIN_GROUPS = (("A", "B", "C"), ("D", "E"))  # pMHC, TCR: each becomes one chain
NUMBER_SHIFT = 1000  # per source chain within a group
CHAIN_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CLASH_DISTANCE = 3.5
SLIDE_STEP = 1.0
DIRECTIONS_PER_COPY = 8
CONTACT_DISTANCE = 10.0


def example_atoms() -> tuple[list[str], np.ndarray]:
    lines = [line for line in gzip.decompress(EXAMPLE.read_bytes()).decode().splitlines() if line.startswith("ATOM")]
    xyz = np.array([[float(line[30:38]), float(line[38:46]), float(line[46:54])] for line in lines])
    return lines, xyz


def copy_atoms(lines: list[str], groups: tuple[tuple[str, ...], ...]) -> list[list[tuple[int, str, str, str]]]:
    """Per output chain (one per group of 1BD2 chains): its atoms as (index in `lines`, columns 13-21, the
    shifted residue number and insertion code, the rest of the line after the coordinates)."""
    out = []
    for chains in groups:
        atoms = []
        for shift, chain in enumerate(chains):
            for index, line in enumerate(lines):
                if line[21] == chain:
                    number = int(line[22:26]) + NUMBER_SHIFT * shift
                    atoms.append((index, line[12:21], f"{number:4d}{line[26]}", line[54:]))
        out.append(atoms)
    return out


def place_copies(xyz: np.ndarray, ca: np.ndarray, copies: int, seed: int) -> list[np.ndarray]:
    """Coordinates of each copy (rotated and slid into contact), the first copy where it is."""
    rng = np.random.default_rng(seed)
    centred = xyz - xyz.mean(axis=0)
    placed = [centred]
    placed_ca = [centred[ca]]
    for _ in range(copies - 1):
        everything = np.concatenate(placed)
        tree = cKDTree(everything)
        ca_tree = cKDTree(np.concatenate(placed_ca))
        centre = everything.mean(axis=0)
        reach = np.linalg.norm(everything - centre, axis=1).max() + np.linalg.norm(centred, axis=1).max() + 5.0
        best = None
        for _ in range(DIRECTIONS_PER_COPY):
            turned = Rotation.random(random_state=rng).apply(centred)
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            distance = reach
            while distance > 0:
                moved = turned + centre + direction * (distance - SLIDE_STEP)
                if tree.query(moved, distance_upper_bound=CLASH_DISTANCE)[0].min() < CLASH_DISTANCE:
                    break
                distance -= SLIDE_STEP
            candidate = turned + centre + direction * distance
            contacts = sum(len(near) for near in ca_tree.query_ball_point(candidate[ca], CONTACT_DISTANCE))
            if best is None or contacts > best[0]:
                best = (contacts, candidate)
        placed.append(best[1])
        placed_ca.append(best[1][ca])
    return placed


def write_assembly(path: Path, copies: int = 16, chains: int = 20, seed: int = 1) -> Path:
    if not copies <= chains <= min(2 * copies, len(CHAIN_IDS)):
        raise ValueError(f"chains must be between copies and twice as many (at most {len(CHAIN_IDS)})")
    lines, xyz = example_atoms()
    ca = np.array([line[12:16] == " CA " for line in lines])
    split = copy_atoms(lines, CHAIN_GROUPS)
    whole = copy_atoms(lines, (tuple(chain for group in CHAIN_GROUPS for chain in group),))
    out, serial, chain_ids = [], 1, iter(CHAIN_IDS)
    for copy, coordinates in enumerate(place_copies(xyz, ca, copies, seed)):
        for atoms in split if copy < chains - copies else whole:
            chain = next(chain_ids)
            for index, name_columns, residue_columns, rest in atoms:
                x, y, z = coordinates[index]
                out.append(f"ATOM  {serial % 100000:5d} {name_columns}{chain}{residue_columns}   "
                           f"{x:8.3f}{y:8.3f}{z:8.3f}{rest}")
                serial += 1
            out.append(f"TER   {serial % 100000:5d}      {name_columns[5:8]} {chain}{residue_columns}")
            serial += 1
    path.write_text("\n".join(out) + "\nEND\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--copies", type=int, default=16)
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_assembly(args.out, args.copies, args.chains, args.seed)


if __name__ == "__main__":
    main()
