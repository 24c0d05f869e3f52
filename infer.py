"""Score every protein complex in a folder with TopoQA.

    python infer.py --complex_folder DIR [--result_folder OUT] [--checkpoint CKPT]

Writes OUT/result.csv (MODEL,PRED_DOCKQ, the reference format), OUT/ranking.csv
(highest predicted DockQ first) and OUT/skipped.csv (MODEL,REASON for every input
that could not be scored). With --labels it also evaluates the ranking.
Exit code: 0 when at least one complex was scored, 1 when none could be, 2 for
bad arguments (missing folder or checkpoint, outputs that exist already, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Only light imports up to the point where featurisation starts: its worker processes are forked from this one
# and never need torch. torch and the network are imported while they work (see main()).
from data.edges import GEOMETRY_XYY
from data.featurize import FeaturizeJobs, featurize_many
from data.files import write_csv
from data.graph_cache import CACHE_ENV, default_cache_dir
from data.inputs import STRUCTURE_SUFFIXES, complex_inputs
from data.labels import LabelFileError, read_labels
from data.topology import alpha_precision
from data.workers import exit_on_interrupt, interrupts_deferred
from model.checkpoint_paths import default_checkpoint_path, safetensors_metadata

OUTPUT_FILES = ("result.csv", "ranking.csv", "skipped.csv")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--complex_folder", required=True, help="folder of structures: PDB or mmCIF files "
                        "(.pdb, .ent, .cif, .mmcif, each optionally .gz)")
    parser.add_argument("--recursive", action="store_true", help="also score the structures in subfolders, each "
                        "named by its path relative to the folder (e.g. job/seed-1_sample-0/model)")
    parser.add_argument("-w", "--work_dir", help="keep the intermediate graph files (<MODEL>.pt) here")
    parser.add_argument("-r", "--result_folder", default=".", help="where result.csv goes (default: current folder)")
    parser.add_argument("--checkpoint", help="`.ckpt` or `.safetensors` (default: $TOPOQA_CHECKPOINT, else the "
                        "published checkpoint in $TOPOQA_REFERENCE)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="featurisation processes (default: all cores)")
    parser.add_argument("--batch_size", type=int, default=16, help="graphs per forward pass (default: 16)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--geometry", choices=("xyy", "xyz"), help="edge-histogram geometry (default: the "
                        "checkpoint's, or xyy, the published checkpoint's training geometry)")
    parser.add_argument("--cache_dir", help=f"content-hash cache of featurised complexes (default: ${CACHE_ENV}, "
                        "else ~/.cache/topoqa/graphs)")
    parser.add_argument("--no_cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--labels", help="CSV with MODEL and DockQ columns (and optionally a target column): "
                        "also evaluate the ranking")
    parser.add_argument("--target_column", default="target", help="target column name in --labels (default: target)")
    parser.add_argument("--report", action="store_true", help="also write report.html (pictures of the ranking)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing result files")
    return parser.parse_args(argv)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def require_writable_folder(folder: Path, flag: str) -> None:
    """Fail now, before minutes of featurisation, when the outputs could not be written at the end."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-")
        probe.close()
    except OSError as error:
        fail(f"{folder}: cannot write the {flag} ({error.strerror or error})")


def read_label_table(path: Path, target_column: str) -> dict[str, tuple[float, str]]:
    """MODEL -> (true DockQ, target; "all" without a target column); a bad file stops here, naming every problem."""
    try:
        labels = read_labels(path, "dockq", target_column=target_column)
    except LabelFileError as error:
        fail(str(error))
    return {label.model: (label.value, label.target or "all") for label in labels}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    folder = Path(args.complex_folder)
    if not folder.is_dir():
        fail(f"{folder}: complex folder not found")
    if args.batch_size < 1 or args.jobs < 1:
        fail("--batch_size and --jobs must be at least 1")
    try:
        alpha_precision()
    except ValueError as error:
        fail(str(error))
    result_folder = Path(args.result_folder)
    outputs = OUTPUT_FILES + (("evaluation.csv",) if args.labels else ()) + (("report.html",) if args.report else ())
    existing = [result_folder / name for name in outputs if (result_folder / name).exists()]
    if existing and not args.overwrite:
        fail(f"{existing[0]} already exists; pass --overwrite to replace it, or choose another --result_folder")
    labels = read_label_table(Path(args.labels), args.target_column) if args.labels else None

    inputs, names, skipped = complex_inputs(folder, recursive=args.recursive)
    if not inputs:
        fail(f"{folder}: no structure files found (looked for {', '.join(STRUCTURE_SUFFIXES)})")
    if args.work_dir and not args.overwrite:
        kept = [Path(args.work_dir) / f"{name}.pt" for name in names]
        clashes = [path for path in kept if path.exists()]
        if clashes:
            fail(f"{clashes[0]} already exists ({len(clashes)} graph file(s) in --work_dir would be replaced); "
                 "pass --overwrite, or choose another --work_dir")

    checkpoint_path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path()
    if checkpoint_path is None:
        fail("no checkpoint: pass --checkpoint or set TOPOQA_CHECKPOINT (see README, 'Configuration')")
    if not checkpoint_path.is_file():
        fail(f"{checkpoint_path}: checkpoint file not found")
    # The geometry the checkpoint was trained on: a safetensors header says so without torch; a Lightning
    # .ckpt is read (with torch) only later, and in the rare case it names another geometry the
    # complexes are featurised again below.
    header_geometry = (safetensors_metadata(checkpoint_path) or {}).get("geometry")
    geometry = args.geometry or header_geometry or GEOMETRY_XYY
    cache_dir = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    require_writable_folder(result_folder, "--result_folder")
    if args.work_dir:
        require_writable_folder(Path(args.work_dir), "--work_dir")
    featurisation = FeaturizeJobs(inputs, geometry=geometry, jobs=args.jobs, cache_dir=cache_dir, background=True,
                                  names=names)

    # While the workers featurise: the heavy imports (several seconds of CPU) and the checkpoint.
    with interrupts_deferred():  # a Ctrl-C during torch's import would be lost
        import torch

        from model.checkpoint import CheckpointError, read_checkpoint
        from model.predict import predict
        from model.topoqa import TopoQA

    try:
        checkpoint = read_checkpoint(checkpoint_path)
    except CheckpointError as error:
        featurisation.close()
        fail(str(error))
    model = TopoQA()
    model.load_state_dict(checkpoint.state_dict, strict=True)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        featurisation.close()
        fail("--device cuda: no CUDA device is available")
    model = model.to(device).eval()

    trained_geometry = checkpoint.metadata.get("geometry", GEOMETRY_XYY)
    if args.geometry and args.geometry != trained_geometry:
        print(f"warning: graphs use geometry {args.geometry} but the checkpoint was trained on {trained_geometry}; "
              "predictions will not match its calibration", file=sys.stderr)

    results = featurisation.results(progress=True)
    wanted_geometry = args.geometry or trained_geometry
    if wanted_geometry != geometry:
        results = featurize_many(inputs, geometry=wanted_geometry, jobs=args.jobs, cache_dir=cache_dir, progress=True,
                                 names=names)

    # The featurizer's NumPy arrays go straight into the network: no PyG import (seconds) unless files are kept.
    graphs = [result.arrays for result in results if result.arrays is not None]
    skipped += [(result.name, result.reason) for result in results if result.arrays is None]
    if args.work_dir:
        from model.graph_io import save_graph

        for graph in graphs:
            save_graph(graph.to_data(), Path(args.work_dir) / f"{graph.name}.pt", overwrite=args.overwrite)

    predictions = [float(value) for value in predict(model, graphs, args.batch_size)]
    names = [graph.name for graph in graphs]

    result_folder.mkdir(parents=True, exist_ok=True)
    # repr of the float32 prediction as a Python float: the reference's text form.
    # Checked before any work: these files did not exist, or --overwrite was given.
    write_csv(result_folder / "result.csv", ["MODEL", "PRED_DOCKQ"],
              [[name, repr(value)] for name, value in zip(names, predictions, strict=True)], overwrite=True)
    ranked = sorted(zip(names, predictions, strict=True), key=lambda item: (-item[1], item[0]))
    write_csv(result_folder / "ranking.csv", ["RANK", "MODEL", "PRED_DOCKQ"],
              [[rank, name, repr(value)] for rank, (name, value) in enumerate(ranked, start=1)], overwrite=True)
    write_csv(result_folder / "skipped.csv", ["MODEL", "REASON"], skipped, overwrite=True)

    elapsed = time.perf_counter() - started
    print(f"scored {len(graphs)} of {len(inputs)} complexes in {elapsed:.1f} s with {checkpoint_path}"
          f" -> {result_folder / 'result.csv'}")
    for name, value in ranked[:10]:
        print(f"  {value:.4f}  {name}")
    if len(ranked) > 10:
        print(f"  ... {len(ranked) - 10} more in {result_folder / 'ranking.csv'}")
    if skipped:
        print(f"could not score {len(skipped)} file(s) (listed in {result_folder / 'skipped.csv'}):", file=sys.stderr)
        for name, reason in skipped:
            print(f"  {name}: {reason}", file=sys.stderr)

    if labels is not None:
        labelled = [(name, value) for name, value in zip(names, predictions, strict=True) if name in labels]
        unlabelled = len(names) - len(labelled)
        if unlabelled:
            print(f"warning: {unlabelled} scored complex(es) have no label in {args.labels}", file=sys.stderr)
        if labelled:
            from model.evaluation import evaluate  # scipy.stats: imported only when it is needed

            evaluation = evaluate(
                [name for name, _ in labelled],
                [labels[name][1] for name, _ in labelled],
                [value for _, value in labelled],
                [labels[name][0] for name, _ in labelled],
            )
            rows = [[t.target, t.models, t.pearson, t.spearman, t.mse, t.top1_loss, int(t.top1_hit), int(t.top5_hit)]
                    for t in evaluation.targets]
            rows.append(["ALL", evaluation.models, evaluation.pearson, evaluation.spearman, evaluation.mse,
                         evaluation.mean_top1_loss, evaluation.top1_hits, evaluation.top5_hits])
            header = ["TARGET", "MODELS", "PEARSON", "SPEARMAN", "MSE", "TOP1_LOSS", "TOP1_HIT", "TOP5_HIT"]
            write_csv(result_folder / "evaluation.csv", header, rows, overwrite=True)
            print("\n".join(evaluation.summary_lines()))
    if args.report:
        from model.report import write_report  # matplotlib: imported only for a report

        write_report(result_folder / "report.html", names, predictions, labels, skipped, overwrite=True)
        print(f"report: {result_folder / 'report.html'}")
    return 0 if graphs else 1


if __name__ == "__main__":
    try:
        exit_code = main()
    except KeyboardInterrupt:
        exit_on_interrupt("infer.py")
    # Everything is written (atomically) and reported, and the featurisation workers have exited. Python's own
    # teardown of torch would take most of a second more of one CPU: leave the memory to the system.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
