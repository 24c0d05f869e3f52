"""Score every protein complex in a folder with TopoQA.

    python infer.py --complex_folder DIR [--result_folder OUT] [--checkpoint CKPT]
    accelerate launch --config_file accelerate_config/screen.yaml [--num_processes N] infer.py -c DIR -r OUT

Writes OUT/result.csv (MODEL,PRED_DOCKQ, the reference format), OUT/ranking.csv
(highest predicted DockQ first) and OUT/skipped.csv (MODEL,REASON for every input
that could not be scored). With --labels it also evaluates the ranking.
Each complex is scored as soon as it is featurised and recorded in OUT/partial/ at once;
a killed run is finished by the same command with --resume. Launched as several
processes, each scores its share and the main one writes the same files, byte for byte.
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
from data.faults import fault_point
from data.featurize import FeaturizeJobs
from data.files import sha256_file, write_csv
from data.graph_cache import CACHE_ENV, default_cache_dir, featurisation_fingerprint
from data.inputs import STRUCTURE_SUFFIXES, complex_inputs
from data.labels import LabelFileError, read_labels
from data.topology import alpha_precision
from data.workers import available_cpus, exit_on_interrupt, interrupts_deferred
from model.checkpoint_paths import default_checkpoint_path, safetensors_metadata
from scoring.partial import PartialResults, Record
from scoring.processes import RunProgress, connect_processes, launched_place, share

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
    parser.add_argument("--jobs", type=int, help="featurisation processes (default: the machine's cores, shared "
                        "between the processes `accelerate launch` starts on it)")
    parser.add_argument("--batch_size", type=int, default=16, help="accepted for older command lines; every "
                        "complex is scored alone, so that its score never depends on the others")
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
    parser.add_argument("--overwrite", action="store_true", help="replace existing result files (and discard "
                        "the partial results of an unfinished run)")
    parser.add_argument("--resume", action="store_true", help="finish a killed run: score only the complexes "
                        "missing from RESULT_FOLDER/partial (same arguments as the killed run)")
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


def run_settings(folder: Path, checkpoint_path: Path, geometry: str) -> dict[str, str]:
    """What decides a complex's number in this run: a resumed run must have the same."""
    return {
        "complex_folder": str(folder.resolve()),
        "checkpoint_sha256": sha256_file(checkpoint_path),
        "geometry": geometry,
        "alpha_precision": alpha_precision(),
        "featurisation": featurisation_fingerprint(),
    }


def check_partial_results(partial: PartialResults, settings: dict[str, str], args: argparse.Namespace) -> None:
    """Refuse partial results of another run unless told what to do with them (read-only: every process runs it)."""
    if not partial.exists():
        return
    if not args.resume:
        if not args.overwrite:
            fail(f"{partial.folder} holds the partial results of an unfinished run: pass --resume (with the same "
                 "arguments) to finish it, or --overwrite to discard them and start again")
        return
    recorded = partial.settings()
    if recorded is not None and recorded != settings:
        changed = ", ".join(key for key in sorted(settings) if recorded.get(key) != settings[key])
        fail(f"{partial.folder}: the unfinished run used another {changed}; --resume needs the same arguments "
             "(or pass --overwrite without --resume to discard it and start again)")


def input_key(path: Path, folder: Path) -> str:
    """What identifies an input in the partial results: its path inside the complex folder."""
    return path.relative_to(folder).as_posix()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    folder = Path(args.complex_folder)
    if not folder.is_dir():
        fail(f"{folder}: complex folder not found")
    if args.batch_size < 1 or (args.jobs is not None and args.jobs < 1):
        fail("--batch_size and --jobs must be at least 1")
    try:
        alpha_precision()
    except ValueError as error:
        fail(str(error))
    result_folder = Path(args.result_folder)
    partial = PartialResults(result_folder)
    resuming = args.resume and partial.exists()  # outputs there are then this run's, written before a kill
    outputs = OUTPUT_FILES + (("evaluation.csv",) if args.labels else ()) + (("report.html",) if args.report else ())
    existing = [result_folder / name for name in outputs if (result_folder / name).exists()]
    if existing and not args.overwrite and not resuming:
        fail(f"{existing[0]} already exists; pass --overwrite to replace it, or choose another --result_folder")
    labels = read_label_table(Path(args.labels), args.target_column) if args.labels else None

    inputs, names, skipped = complex_inputs(folder, recursive=args.recursive)
    if not inputs:
        fail(f"{folder}: no structure files found (looked for {', '.join(STRUCTURE_SUFFIXES)})")
    name_of = dict(zip(inputs, names, strict=True))
    if args.work_dir and not args.overwrite and not resuming:
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
    settings = run_settings(folder, checkpoint_path, geometry)
    check_partial_results(partial, settings, args)

    # Under `accelerate launch` the processes meet before any writes: the main one alone prepares the partial
    # folder, and every process reads it after. One process connects later, while its workers featurise.
    place = launched_place()
    state = connect_processes(place, scoring_on_cpu(args.device)) if place.count > 1 else None
    if state is not None:
        state.wait_for_everyone()  # every process has checked the folder as it was
    if place.is_main:
        if partial.exists() and not args.resume:
            partial.discard()  # --overwrite (check_partial_results refused otherwise)
        partial.start(settings)
    if state is not None:
        state.wait_for_everyone()
        if partial.settings() != settings:
            fail(f"{partial.folder}: not written by the main process; with several machines, --result_folder must "
                 "be a folder they all share")
    keys = {path: input_key(path, folder) for path in inputs}
    wanted = set(keys.values())
    finished = {key: record for key, record in partial.records().items() if key in wanted}
    # The share comes from all the inputs, finished or not: another process appending meanwhile changes nothing.
    todo = [path for path in share(inputs, place.index, place.count) if keys[path] not in finished]
    if place.is_main and finished:
        print(f"resuming: {len(finished)} of {len(inputs)} complexes are finished already ({partial.folder}); "
              f"scoring the other {len(inputs) - len(finished)}", file=sys.stderr)
    jobs = args.jobs or max(1, available_cpus() // place.local_count)
    featurisation = FeaturizeJobs(todo, geometry=geometry, jobs=jobs, cache_dir=cache_dir, background=True,
                                  names=[name_of[path] for path in todo])

    # While the workers featurise: the heavy imports (several seconds of CPU) and the checkpoint.
    with interrupts_deferred():  # a Ctrl-C during torch's import would be lost
        import torch

        from model.checkpoint import CheckpointError, read_checkpoint
        from model.predict import predict
        from model.topoqa import TopoQA
        from training.determinism import apply_determinism_environment, configure_torch

    if args.device == "cuda" and not torch.cuda.is_available():
        featurisation.close()
        fail("--device cuda: no CUDA device is available")
    apply_determinism_environment()
    state = state or connect_processes(place, scoring_on_cpu(args.device))
    # One intra-op thread and deterministic kernels: a complex's bits may not depend on the machine's load, the
    # number of processes (the launcher sets OMP_NUM_THREADS=1 for several) or the other complexes.
    configure_torch(deterministic=True, num_threads=1)
    try:
        checkpoint = read_checkpoint(checkpoint_path)
    except CheckpointError as error:
        featurisation.close()
        fail(str(error))
    model = TopoQA()
    model.load_state_dict(checkpoint.state_dict, strict=True)
    model = model.to(state.device).eval()

    trained_geometry = checkpoint.metadata.get("geometry", GEOMETRY_XYY)
    if args.geometry and args.geometry != trained_geometry:
        print(f"warning: graphs use geometry {args.geometry} but the checkpoint was trained on {trained_geometry}; "
              "predictions will not match its calibration", file=sys.stderr)
    wanted_geometry = args.geometry or trained_geometry
    if wanted_geometry != geometry:  # nothing was scored yet: featurise again with the checkpoint's geometry
        featurisation.close()
        featurisation = FeaturizeJobs(todo, geometry=wanted_geometry, jobs=jobs, cache_dir=cache_dir,
                                      names=[name_of[path] for path in todo])
    if args.work_dir:
        from model.graph_io import save_graph

    # Streaming: each graph is scored alone as soon as it is ready, recorded on disk, and dropped.
    progress = RunProgress(state, total=len(inputs), finished_before=len(finished))
    writer = partial.writer(place.index)
    new_records = []
    for result in featurisation.completed():
        prediction = None
        if result.arrays is not None:
            if args.work_dir:
                save_graph(result.arrays.to_data(), Path(args.work_dir) / f"{result.name}.pt",
                           overwrite=args.overwrite or resuming)
            prediction = float(predict(model, [result.arrays])[0])
        record = Record(keys[result.path], result.name, prediction, None if prediction is not None else result.reason)
        writer.append([record])
        fault_point("complex-recorded", record.model)
        progress.advance()
        new_records.append(record)
    writer.close()
    progress.close()

    if state.num_processes > 1:
        from accelerate.utils import gather_object

        new_records = gather_object(new_records)
    records = finished | {record.file: record for record in new_records}
    in_order = [records[keys[path]] for path in inputs]  # every input is recorded once, by one process
    scored = [(record.model, record.pred_dockq) for record in in_order if record.pred_dockq is not None]
    skipped += [(record.model, record.reason) for record in in_order if record.pred_dockq is None]
    if place.is_main:
        write_outputs(result_folder, scored, skipped)
        report(scored, skipped, len(inputs), time.perf_counter() - started, checkpoint_path, result_folder)
        if labels is not None:
            write_evaluation(result_folder, scored, labels, args.labels)
        if args.report:
            from model.report import write_report  # matplotlib: imported only for a report

            write_report(result_folder / "report.html", [name for name, _ in scored],
                         [value for _, value in scored], labels, skipped, overwrite=True)
            print(f"report: {result_folder / 'report.html'}")
        partial.discard()  # the outputs are complete: nothing is left to resume
    return 0 if scored else 1


def scoring_on_cpu(device: str) -> bool:
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def write_outputs(result_folder: Path, scored: list[tuple[str, float]], skipped: list[tuple[str, str]]) -> None:
    """result.csv (input order), ranking.csv and skipped.csv. Checked before any work: these files did not
    exist, or --overwrite was given, or they are this run's own, from before it was killed (--resume)."""
    # repr of the float32 prediction as a Python float: the reference's text form.
    write_csv(result_folder / "result.csv", ["MODEL", "PRED_DOCKQ"],
              [[name, repr(value)] for name, value in scored], overwrite=True)
    write_csv(result_folder / "ranking.csv", ["RANK", "MODEL", "PRED_DOCKQ"],
              [[rank, name, repr(value)] for rank, (name, value) in enumerate(ranked(scored), start=1)],
              overwrite=True)
    write_csv(result_folder / "skipped.csv", ["MODEL", "REASON"], skipped, overwrite=True)


def ranked(scored: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def report(
    scored: list[tuple[str, float]], skipped: list[tuple[str, str]], inputs: int, seconds: float,
    checkpoint_path: Path, result_folder: Path,
) -> None:
    print(f"scored {len(scored)} of {inputs} complexes in {seconds:.1f} s with {checkpoint_path}"
          f" -> {result_folder / 'result.csv'}")
    for name, value in ranked(scored)[:10]:
        print(f"  {value:.4f}  {name}")
    if len(scored) > 10:
        print(f"  ... {len(scored) - 10} more in {result_folder / 'ranking.csv'}")
    if skipped:
        print(f"could not score {len(skipped)} file(s) (listed in {result_folder / 'skipped.csv'}):", file=sys.stderr)
        for name, reason in skipped:
            print(f"  {name}: {reason}", file=sys.stderr)


def write_evaluation(
    result_folder: Path, scored: list[tuple[str, float]], labels: dict[str, tuple[float, str]], label_file: str
) -> None:
    labelled = [(name, value) for name, value in scored if name in labels]
    unlabelled = len(scored) - len(labelled)
    if unlabelled:
        print(f"warning: {unlabelled} scored complex(es) have no label in {label_file}", file=sys.stderr)
    if not labelled:
        return
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
