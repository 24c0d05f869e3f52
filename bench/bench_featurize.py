"""Featurizer speed: per complex vs the reference, size scaling, GUDHI share, process pool, cache.

    .venv/bin/python bench/bench_featurize.py [--repeats 3] [--skip-large] [--skip-baseline] [--jobs 2]

Columns: "ours" is one process with mkdssp beside it (the only way a complex is featurised), "CPU" the CPU
seconds of that run including mkdssp (a load-independent measure of the work).
Ratios are against the reference wall time recorded in each golden's expected.json (same kind of 2-core
machine), and, for the generated large complex (8 chains, ~25,000 atoms), against a naive baseline timed in
this same run: the reference algorithm as SPEC 1.1-1.4 describes it (a NeighborSearch rebuilt per residue,
GUDHI Rips and alpha per group, Biopython's DSSP wrapper, per-pair Python loops). Interpreter start-up and
imports are excluded everywhere. Other processes on the machine make numbers noisy: the load is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.featurize import featurize_complex, featurize_many  # noqa: E402
from data.structure import read_structure  # noqa: E402
from data.topology import alpha_h1_bars, gudhi_h1_bars  # noqa: E402
from data.workers import available_cpus  # noqa: E402
from model.checkpoint_paths import reference_root  # noqa: E402


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds(function) -> float:
    """CPU time of this process and of the children it waited for (mkdssp), for one call."""
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    function()
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True))


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def golden_atoms(name: str) -> list[str]:
    path = reference_root() / "golden" / name / "input.pdb"
    return [line for line in path.read_text().splitlines() if line.startswith("ATOM")]


def make_large_complex(path: Path) -> Path:
    """8 chains, ~27,000 atoms, ~480 interface residues, from the goldens.

    Two copies of dimer_dimer_model (4 chains each, 120 A apart) give the interfaces; each of 7 chains then
    gets an extra domain (a golden chain, residues renumbered from 1000) placed far from everything, so the
    atom count grows without new interface residues.
    """
    dimer = golden_atoms("dimer_dimer_model")
    extra = [(name, chain) for name, chains in (("1A2K_r_l_b_model", "ABC"), ("test_model", "AB"),
                                                 ("dove_correct", "AB")) for chain in chains]
    out, serial = [], 1
    for copy, names in enumerate(("ABHL", "CDEF")):
        chain_map = dict(zip("ABHL", names, strict=True))
        for chain in "ABHL":
            new_chain = chain_map[chain]
            for line in dimer:
                if line[21] != chain:
                    continue
                x, y, z = float(line[30:38]) + 120.0 * copy, float(line[38:46]), float(line[46:54])
                out.append(f"ATOM  {serial:5d}{line[11:21]}{new_chain}{line[22:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}")
                serial += 1
            domain = 4 * copy + "ABHL".index(chain)
            if domain < len(extra):
                name, source_chain = extra[domain]
                for line in golden_atoms(name):
                    if line[21] != source_chain:
                        continue
                    x, y, z = float(line[30:38]), float(line[38:46]) + 300.0 * (domain + 1), float(line[46:54])
                    number = int(line[22:26]) + 1000
                    out.append(f"ATOM  {serial:5d}{line[11:21]}{new_chain}{number:4d}{line[26:30]}"
                               f"{x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}")
                    serial += 1
            last = out[-1]  # a full TER record, as PDB files have them
            out.append(f"TER   {serial:5d}      {last[17:27]}")
            serial += 1
    path.write_text("\n".join(out) + "\nEND\n")
    return path


def naive_baseline(path: Path) -> None:
    """The reference algorithm as SPEC describes it, without our optimisations (speed baseline only)."""
    import gudhi
    from Bio.PDB import NeighborSearch, PDBParser
    from Bio.PDB.DSSP import DSSP

    from data.dssp import dssp_input_text
    from data.structure import read_first_model_text

    structure = PDBParser(QUIET=True).get_structure("x", str(path))
    model = structure[0]
    atoms = list(model.get_atoms())
    residues = [r for r in model.get_residues() if r.id[0] == " " and "CA" in r]
    interface = set()
    for i, a in enumerate(residues):
        for b in residues[i + 1:]:
            if a.get_parent().id != b.get_parent().id and (a["CA"] - b["CA"]) < 10.0:
                interface.update((a, b))
    interface = sorted(interface, key=lambda r: (r.get_parent().id, r.id[1], r.get_resname()))
    for residue in interface:
        neighbours = NeighborSearch(atoms).search(residue["CA"].coord, 8.0)  # index rebuilt per residue
        for group in ("C", "N", "O", "CN", "CO", "NO", "CNO"):
            points = [a.coord.tolist() for a in neighbours if a.get_name()[0] in group]
            rips = gudhi.RipsComplex(points=points).create_simplex_tree(max_dimension=1)
            rips.persistence()
            alpha = gudhi.AlphaComplex(points=points).create_simplex_tree()
            alpha.persistence()
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.pdb"
        copy.write_text(dssp_input_text(read_first_model_text(path)))
        DSSP(model, str(copy), dssp="mkdssp")
    for i, a in enumerate(interface):
        for b in interface[i + 1:]:
            if a.get_parent().id != b.get_parent().id and 0 < (a["CA"] - b["CA"]) < 10.0:
                counts = [0] * 10
                for x in a:
                    for y in b:
                        p, q = x.coord, y.coord
                        d = float(np.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[1] - q[1]) ** 2))
                        if d >= 1:
                            counts[min(int(d) - 1, 9)] += 1


def persistence_share(path: Path) -> tuple[float, float, float, int, int]:
    """(seconds in the alpha complexes' H1 bars, total seconds, seconds GUDHI's fastest mode takes for the same
    clouds, clouds, clouds the compiled code hands to GUDHI) for one featurisation, single process (profiled)."""
    clouds = []

    def recorded(points, precision):
        clouds.append(points)
        return alpha_h1_bars(points, precision)

    profile = cProfile.Profile()
    with mock.patch("data.topology.alpha_h1_bars", recorded):
        started = time.perf_counter()
        profile.runcall(featurize_complex, path)
        total = time.perf_counter() - started
    stats = pstats.Stats(profile)
    inside = sum(values[3] for (_, _, function), values in stats.stats.items() if function == "alpha_h1_bars")
    started = time.perf_counter()
    for points in clouds:
        gudhi_h1_bars(points, "fast")
    gudhi_seconds = time.perf_counter() - started
    from data.alpha_complex import alpha_h1_bars_compiled

    clouds = [points for points in clouds if len(points) >= 3]
    fallbacks = sum(alpha_h1_bars_compiled(points) is None for points in clouds)
    return inside, total, gudhi_seconds, len(clouds), fallbacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="do not time the naive baseline (~1 min)")
    parser.add_argument("--jobs", type=int, default=2, help="process-pool size for the folder benchmark")
    args = parser.parse_args()

    goldens = sorted(p for p in (reference_root() / "golden").iterdir() if p.is_dir())
    print(f"CPUs available: {available_cpus()}; load average: {load()}")
    featurize_complex(goldens[0] / "input.pdb")  # warm-up: imports, mkdssp binary in page cache

    print(f"\nPer complex (best of {args.repeats}, default settings):")
    print(f"{'complex':24s} {'atoms':>6s} {'nodes':>5s} {'ours s':>7s} {'CPU s':>6s} {'ref s':>6s} {'ratio':>6s}")
    rows = []
    for folder in goldens:
        path = folder / "input.pdb"
        reference = json.loads((folder / "expected.json").read_text())["reference_wall_seconds_single_complex_2_cores"]
        ours = best_time(lambda p=path: featurize_complex(p), args.repeats)
        cpu = cpu_seconds(lambda p=path: featurize_complex(p))
        atoms = len(read_structure(path).atom_xyz)
        nodes = featurize_complex(path).num_nodes
        rows.append((folder.name, atoms, nodes, ours))
        print(f"{folder.name:24s} {atoms:6d} {nodes:5d} {ours:7.2f} {cpu:6.2f} {reference:6.1f} "
              f"{reference / ours:5.1f}x")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.skip_large:
            large = make_large_complex(scratch / "large_8_chains.pdb")
            ours = best_time(lambda: featurize_complex(large), max(1, args.repeats - 1))
            nodes = featurize_complex(large).num_nodes
            atoms = len(read_structure(large).atom_xyz)
            line = f"{'large_8_chains':24s} {atoms:6d} {nodes:5d} {ours:7.2f}"
            if not args.skip_baseline:
                baseline = best_time(lambda: naive_baseline(large), 1)
                line += f"  naive baseline {baseline:.1f} s, ratio {baseline / ours:.1f}x (reference: ~45 s)"
            print(line)
            rows.append(("large_8_chains", atoms, nodes, ours))
            if not args.skip_baseline:
                dove = reference_root() / "golden" / "dove_correct" / "input.pdb"
                print(f"  (naive baseline on dove_correct: {best_time(lambda: naive_baseline(dove), 1):.1f} s; "
                      "recorded reference: 10.0 s)")

        print("\nScaling (seconds per node, seconds per 1,000 atoms):")
        for name, atoms, nodes, seconds in rows:
            print(f"  {name:24s} {seconds / nodes * 1000:6.1f} ms/node  {seconds / atoms * 1000:6.3f} s/1k atoms")

        print("\nTime in the alpha complexes' H1 (single process, profiled), against GUDHI on the same clouds:")
        for folder in goldens:
            inside, total, gudhi_seconds, clouds, fallbacks = persistence_share(folder / "input.pdb")
            print(f"  {folder.name:24s} {inside:5.2f} s of {total:5.2f} s = {100 * inside / total:4.1f}%; "
                  f"GUDHI ('fast') {gudhi_seconds:5.2f} s ({gudhi_seconds / inside:.1f}x slower); "
                  f"{fallbacks} of {clouds} clouds to GUDHI")

        copies = scratch / "folder"
        copies.mkdir()
        for k in range(2):
            for folder in goldens:
                shutil.copy(folder / "input.pdb", copies / f"{folder.name}_{k}.pdb")
        paths = sorted(copies.iterdir())
        cores = available_cpus()
        runs = {}
        for jobs in (1, args.jobs):
            started = time.perf_counter()
            cpu = cpu_seconds(lambda: featurize_many(paths, jobs=jobs, progress=False))  # noqa: B023
            runs[jobs] = (time.perf_counter() - started, cpu)
        (one, one_cpu), (many, many_cpu) = runs[1], runs[args.jobs]
        print(f"\nFolder of {len(paths)} complexes: one process {one:.2f} s, jobs={args.jobs} {many:.2f} s "
              f"(speed-up {one / many:.2f}x on {cores} CPUs)")
        # One process already keeps more than one CPU busy (mkdssp runs beside it), so the speed-up is bounded
        # by the CPUs left over: how busy they were tells whether the pool scales.
        print(f"  CPUs kept busy: one process {one_cpu / one:.2f} of {cores}, jobs={args.jobs} "
              f"{many_cpu / many:.2f} of {cores} (CPU seconds {one_cpu:.1f} and {many_cpu:.1f})")

        cache = scratch / "cache"
        first = best_time(lambda: featurize_many(paths, cache_dir=cache, progress=False), 1)
        again = best_time(lambda: featurize_many(paths, cache_dir=cache, progress=False), 1)
        print(f"Cache: first run {first:.2f} s, unchanged files again {again:.3f} s ({first / again:.0f}x faster)")
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
