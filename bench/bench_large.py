"""Large assemblies: wall time and peak memory per featurisation stage, this checkout against another one.

    .venv/bin/python bench/bench_large.py [--baseline /work/main] [--rounds 2] [--copies 16] [--chains 20]

Writes a generated ~100,000-atom assembly (bench/large_assembly.py: copies of the bundled 1BD2 complex packed
into contact, 20 chains) to a temporary folder and featurises it with `data.featurize.featurize_stages`, each
run in a fresh process (imports excluded), alternating this checkout and the `--baseline` checkout (PYTHONPATH)
round by round, so that both see the same machine load; the best of the rounds is shown. Per stage: the wall
and CPU seconds spent in it (CPU: this process's, a steadier measure on a shared machine) and the process's
peak RSS once it is done (the peak so far, so the stage that raises it shows). mkdssp runs in the background
from "start mkdssp" on: "wait for mkdssp" is what it adds to the wall time; its own CPU seconds and peak RSS
are shown apart. The graphs of both checkouts are compared bit for
bit, on the assembly and on the bundled examples. `--mkdssp-inputs` also times mkdssp alone on the three
inputs it can be given for the assembly (this checkout's writers): the PDB copy it converts itself, the full
minimal mmCIF copy, and the mmCIF copy with residues out of reach of the interface as backbone only.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Functions that `data.featurize.featurize_stages` calls, in call order: each is timed where it is called.
STAGES = (
    ("read_structure", "read and parse the file"),
    ("read_first_model_text", "read the file"),  # older checkouts
    ("parse_structure", "parse atoms"),  # older checkouts
    ("require_protein_chains", "check the chains"),
    ("interface_residues", "interface residues"),
    ("residues_within_reach", "residues within reach"),
    ("DsspRun", "start mkdssp (writes its input)"),
    ("topology_atoms", "atoms near the interface"),
    ("topology_table", "topology (mkdssp beside it)"),
    ("DsspRun.result", "wait for mkdssp"),
    ("node_table", "node table"),
    ("decimal_ca_coordinates", "decimal CA coordinates"),
    ("edge_features", "edges"),
)
COMPARED = ("interface_ca", "topology", "node_features")
COMPARED_ARRAYS = ("x", "edge_index", "edge_attr")


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def measure(paths: list[str], out: str) -> None:
    """In a fresh process whose PYTHONPATH is the checkout under test: featurise `paths`, timing each stage of
    the first; stages and graphs go to `out` (pickle)."""
    import data.featurize as featurize

    timings: dict[str, list[float]] = {}

    def timed(label: str, function):
        def wrapper(*args, **kwargs):
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                timings.setdefault(label, [0.0, 0.0, 0.0])
                timings[label][0] += time.perf_counter() - started
                timings[label][1] = peak_rss_mb()
                timings[label][2] += time.process_time() - cpu_started

        return wrapper

    featurize.DsspRun.result = timed(dict(STAGES)["DsspRun.result"], featurize.DsspRun.result)
    for name, label in STAGES:
        if hasattr(featurize, name):
            setattr(featurize, name, timed(label, getattr(featurize, name)))
    featurize.featurize_stages(paths[-1])  # warm-up: compiled code and mkdssp's files loaded, not timed
    results = {"stages": None, "graphs": {}}
    for index, path in enumerate(paths):
        timings.clear()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        stages = featurize.featurize_stages(path)
        wall = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if index == 0:
            results["stages"] = {
                "timings": dict(timings), "wall": wall, "peak_rss_mb": peak_rss_mb(),
                "mkdssp_cpu": children.ru_utime + children.ru_stime - children_before.ru_utime
                - children_before.ru_stime,
                "mkdssp_peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
                "nodes": len(stages.node_ids),
                "interface": len(stages.interface_ids), "edges": int(stages.arrays.edge_index.shape[1]),
            }
        results["graphs"][path] = {
            **{name: getattr(stages, name) for name in COMPARED},
            **{name: getattr(stages.arrays, name) for name in COMPARED_ARRAYS},
        }
    Path(out).write_bytes(pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))


def run_checkout(checkout: Path, paths: list[Path], scratch: Path) -> dict:
    out = scratch / "result.pickle"
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(out), *map(str, paths)],
        check=True, env=environment, cwd=checkout,
    )
    return pickle.loads(out.read_bytes())


def best(runs: list[dict]) -> dict:
    """Per stage the best of the rounds (seconds and peak RSS), and the best wall time."""
    first = runs[0]["stages"]
    merged = {**first, "wall": min(run["stages"]["wall"] for run in runs),
              "peak_rss_mb": min(run["stages"]["peak_rss_mb"] for run in runs),
              "mkdssp_cpu": min(run["stages"]["mkdssp_cpu"] for run in runs),
              "mkdssp_peak_rss_mb": min(run["stages"]["mkdssp_peak_rss_mb"] for run in runs), "timings": {}}
    for label in first["timings"]:
        merged["timings"][label] = [min(run["stages"]["timings"][label][k] for run in runs) for k in (0, 1, 2)]
    return merged


def identical(a: dict, b: dict) -> list[str]:
    """Names of the arrays that differ (in dtype, shape or any bit) between two featurisations."""
    return [name for name in (*COMPARED, *COMPARED_ARRAYS)
            if a[name].dtype != b[name].dtype or a[name].shape != b[name].shape
            or a[name].tobytes() != b[name].tobytes()]


def time_mkdssp_inputs(assembly: Path, scratch: Path) -> None:
    """mkdssp alone, wall seconds, CPU seconds and peak RSS, on each input it can be given for `assembly`."""
    from data.dssp import MKDSSP, dssp_input_text, residues_within_reach
    from data.dssp_mmcif import dssp_copy
    from data.interface import interface_residues
    from data.structure import read_first_model_text, read_structure

    structure = read_structure(assembly)
    reach = residues_within_reach(structure, interface_residues(structure))
    inputs = {
        "PDB copy (mkdssp converts it; the older route)":
            ("input.pdb", dssp_input_text(read_first_model_text(assembly))),
        "minimal mmCIF, all atoms": ("full.cif", dssp_copy(structure).text),
        f"minimal mmCIF, backbone beyond reach ({len(reach)} whole)": ("reach.cif", dssp_copy(structure, reach).text),
    }
    print(f"\nmkdssp alone on the assembly ({len(structure.residue_seq):,} residues):")
    for label, (name, content) in inputs.items():
        source = scratch / name
        source.write_text(content)
        started = time.perf_counter()
        process = subprocess.Popen([MKDSSP, "--output-format=dssp", str(source), str(scratch / "out.dssp")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        print(f"  {label:58s} {wall:7.2f} s wall {usage.ru_utime + usage.ru_stime:7.2f} s CPU "
              f"{usage.ru_maxrss / 1024:6.0f} MB (exit {process.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (e.g. main's)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--copies", type=int, default=16)
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mkdssp-inputs", action="store_true", help="also time mkdssp alone on its inputs")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.paths, args.measure)
        return

    sys.path.insert(0, str(ROOT))
    from bench.large_assembly import write_assembly

    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-large-") as folder:
        scratch = Path(folder)
        assembly = write_assembly(scratch / "assembly.pdb", args.copies, args.chains, args.seed)
        atoms = sum(line.startswith("ATOM") for line in assembly.read_text().splitlines())
        examples = sorted(p for p in (ROOT / "examples").iterdir() if ".pdb" in p.name)
        paths = [assembly, *examples]
        checkouts = {"this": ROOT}
        if args.baseline is not None:
            checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in checkouts}
        for _ in range(args.rounds):
            for name, checkout in checkouts.items():
                runs[name].append(run_checkout(checkout, paths, scratch))
        stages = {name: best(results) for name, results in runs.items()}

        this = stages["this"]
        print(f"\n{args.copies} copies of 1BD2 in {args.chains} chains: {atoms:,} atoms, {this['interface']} interface "
              f"residues, {this['nodes']} nodes, {this['edges']} edges; best of {args.rounds} rounds, "
              f"{'baseline (' + str(checkouts['baseline']) + ') then ' if 'baseline' in stages else ''}this "
              "checkout")
        names = list(stages)
        header = "".join(f" {name + ' s':>12s} {'CPU s':>6s} {'peak MB':>8s}" for name in names)
        print(f"{'stage':34s}{header}")
        for _, label in STAGES:
            if not any(label in stages[name]["timings"] for name in names):
                continue  # a function neither checkout has
            cells = ""
            for name in names:
                seconds, peak, cpu = stages[name]["timings"].get(label, [float("nan")] * 3)
                cells += f" {seconds:12.2f} {cpu:6.2f} {peak:8.0f}"
            print(f"{label:34s}{cells}")
        print(f"{'total (wall, -, peak RSS)':34s}"
              + "".join(f" {stages[n]['wall']:12.2f} {'':6s} {stages[n]['peak_rss_mb']:8.0f}" for n in names))
        print(f"{'mkdssp (-, CPU s, peak RSS)':34s}" + "".join(
            f" {'':12s} {stages[n]['mkdssp_cpu']:6.2f} {stages[n]['mkdssp_peak_rss_mb']:8.0f}" for n in names))
        if "baseline" in runs:
            for path in paths:
                differ = identical(runs["baseline"][0]["graphs"][str(path)], runs["this"][0]["graphs"][str(path)])
                print(f"{path.name}: {'bit-identical graphs' if not differ else 'DIFFERENT: ' + ', '.join(differ)}")
        if args.mkdssp_inputs:
            time_mkdssp_inputs(assembly, scratch)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
