"""Convert TopoQA checkpoints between Lightning `.ckpt` and safetensors, inspect and verify them.

    python convert.py to-safetensors IN.ckpt OUT.safetensors [--weights-only] [--overwrite]
    python convert.py to-lightning IN.safetensors OUT.ckpt [--training-state FILE | --weights-only] [--overwrite]
    python convert.py verify CANDIDATE [--reference REF] [--graphs DIR | --complex_folder DIR] [--tolerance T]
    python convert.py inspect FILE

`to-safetensors` writes the weights to OUT.safetensors and, for a Lightning source, everything
else (optimizer state, callbacks, loops) to the companion OUT.training.safetensors, so that
`to-lightning` rebuilds the original checkpoint exactly. Without the companion (`--weights-only`)
`to-lightning` writes a checkpoint with no optimizer state, which Lightning resumes with a fresh
optimizer.

Exit codes: 0 done (verify: PASS), 1 verify FAIL, 2 bad input (one line on stderr naming the
file and the problem). Files are only read as tensors: no code from a file ever runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch

from data.files import sha256_file
from model.checkpoint import (
    TRAINING_STATE_FORMAT,
    Checkpoint,
    CheckpointError,
    read_checkpoint,
    write_lightning,
    write_safetensors,
)
from model.checkpoint_paths import default_checkpoint_path, reference_root
from model.graph_io import GraphFileError
from model.predict import predict
from model.topoqa import TopoQA
from model.verify import (
    GraphSetError,
    featurized_graphs,
    load_graph_folder,
    tensor_differences,
)
from training.lightning_checkpoint import (
    lightning_from_weights,
    lightning_metadata,
    read_training_state,
    training_state_path,
    write_training_state,
)

DEFAULT_TOLERANCE = 1e-5


class UsageError(ValueError):
    """Arguments that cannot be acted on; the message says why."""


def refuse_to_clobber(paths: list[Path], overwrite: bool) -> None:
    for path in paths:
        if path.exists() and not overwrite:
            raise UsageError(f"{path}: already exists (use --overwrite to replace it)")


def describe(checkpoint: Checkpoint) -> str:
    kinds = {"lightning": "Lightning checkpoint", "state_dict": "bare state dict", "safetensors": "safetensors"}
    epoch = "?" if checkpoint.epoch is None else checkpoint.epoch
    step = "?" if checkpoint.global_step is None else checkpoint.global_step
    return f"{kinds[checkpoint.format]}, epoch {epoch}, global step {step}"


def convert_to_safetensors(args: argparse.Namespace) -> int:
    source = read_checkpoint(args.input)
    if source.format == "safetensors":
        raise UsageError(f"{source.path}: is already a safetensors file (to-lightning converts the other way)")
    output = Path(args.output)
    companion = training_state_path(output)
    with_training_state = source.lightning is not None and not args.weights_only
    if output.resolve() == source.path.resolve() or companion.resolve() == source.path.resolve():
        raise UsageError(f"{output}: would replace the input file {source.path}")
    refuse_to_clobber([output, companion] if with_training_state else [output], args.overwrite)

    metadata = {
        "source_file": source.path.name,
        "source_format": source.format,
        "source_sha256": sha256_file(source.path),
    }
    if source.lightning is not None:
        metadata.update(lightning_metadata(source.lightning))
    if with_training_state:
        metadata["training_state"] = companion.name
    write_safetensors(output, source.state_dict, metadata, overwrite=args.overwrite)
    print(f"wrote {output}: {len(source.state_dict)} tensors ({describe(source)})")
    if with_training_state:
        write_training_state(companion, source.lightning, output, overwrite=args.overwrite)
        optimizers = len(source.lightning.get("optimizer_states") or [])
        print(f"wrote {companion}: training state ({optimizers} optimizer state(s), callbacks, loops)")
    elif source.lightning is not None:
        print("no training state written (--weights-only): optimizer and callback state are not carried")
    return 0


def convert_to_lightning(args: argparse.Namespace) -> int:
    source = read_checkpoint(args.input)
    if source.format == "lightning":
        raise UsageError(f"{source.path}: is already a Lightning checkpoint (to-safetensors converts the other way)")
    output = Path(args.output)
    if output.resolve() == source.path.resolve():
        raise UsageError(f"{output}: would replace the input file")
    refuse_to_clobber([output], args.overwrite)

    companion = None
    if args.training_state:
        companion = Path(args.training_state)
    elif not args.weights_only and "training_state" in source.metadata:
        companion = source.path.parent / source.metadata["training_state"]
        if not companion.exists():
            raise UsageError(
                f"{companion}: training state named by {source.path} not found"
                " (pass --training-state FILE, or --weights-only to convert without optimizer state)"
            )
    if companion is not None:
        lightning = read_training_state(companion, source)
        origin = f"optimizer state and callbacks from {companion}"
    else:
        lightning = lightning_from_weights(source)
        origin = "weights only: no optimizer state, Lightning resumes with a fresh optimizer"
    write_lightning(output, lightning, overwrite=args.overwrite)
    print(f"wrote {output}: epoch {lightning['epoch']}, global step {lightning['global_step']}; {origin}")
    return 0


def inspect_file(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError:
        if _is_training_state(path):
            return inspect_training_state(path)
        raise
    state_dict = checkpoint.state_dict
    print(f"file: {path}")
    print(f"sha256: {sha256_file(path)}")
    print(f"format: {describe(checkpoint)}")
    print(f"tensors: {len(state_dict)}")
    print(f"parameters: {sum(tensor.numel() for tensor in state_dict.values())}")
    print(f"dtypes: {', '.join(sorted({str(tensor.dtype) for tensor in state_dict.values()}))}")
    if checkpoint.lightning is not None:
        print_lightning_summary(checkpoint.lightning)
    for key, value in sorted(checkpoint.metadata.items()):
        if key == "lightning_loops":
            value = f"(JSON, {len(value)} characters)"
        elif key == "training_state":
            present = "present" if (path.parent / value).exists() else "MISSING"
            value = f"{value} ({present})"
        print(f"metadata {key}: {value}")
    return 0


def _is_training_state(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == TRAINING_STATE_FORMAT
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a companion
        return False


def inspect_training_state(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensor_count = len(list(handle.keys()))
    lightning = read_training_state(path, None)
    print(f"file: {path}")
    print(f"sha256: {sha256_file(path)}")
    print(f"format: training-state companion (version {metadata.get('format_version')})")
    print(f"weights file: {metadata.get('weights_file')} (sha256 {metadata.get('weights_sha256')})")
    print(f"tensors: {tensor_count}")
    print(f"epoch: {lightning.get('epoch')}, global step: {lightning.get('global_step')}")
    print_lightning_summary(lightning)
    return 0


def print_lightning_summary(lightning: dict) -> None:
    print(f"pytorch-lightning version: {lightning.get('pytorch-lightning_version', '?')}")
    print(f"top-level keys: {', '.join(map(str, lightning))}")
    for index, state in enumerate(lightning.get("optimizer_states") or []):
        groups = state.get("param_groups", []) if isinstance(state, dict) else []
        settings = {key: value for key, value in (groups[0] if groups else {}).items() if key in ("lr", "betas", "eps")}
        count = len(state.get("state", {})) if isinstance(state, dict) else 0
        print(f"optimizer {index}: state for {count} parameters, {settings}")
    if not lightning.get("optimizer_states"):
        print("optimizer: none (weights-only; Lightning resumes with a fresh optimizer)")
    for name in lightning.get("callbacks") or {}:
        print(f"callback: {name}")


def format_difference(value: float) -> str:
    return f"{value:.3e}"


def verify_checkpoint(args: argparse.Namespace) -> int:
    if not (args.tolerance >= 0):
        raise UsageError(f"--tolerance must be a number >= 0, got {args.tolerance}")
    if args.batch_size < 1 or args.jobs < 1:
        raise UsageError("--batch_size and --jobs must be at least 1")
    reference_path = Path(args.reference) if args.reference else default_checkpoint_path()
    if reference_path is None:
        raise UsageError(
            "no reference checkpoint: pass --reference, or set TOPOQA_CHECKPOINT or TOPOQA_REFERENCE"
            " (the folder holding topoqa.ckpt.original)"
        )
    candidate = read_checkpoint(args.candidate)
    reference = read_checkpoint(reference_path)

    if args.complex_folder:
        graphs, skipped = featurized_graphs(args.complex_folder, jobs=args.jobs, geometry=args.geometry)
        graph_source = f"complexes featurised from {args.complex_folder} (geometry {args.geometry})"
    else:
        folder = Path(args.graphs) if args.graphs else reference_root() / "golden"
        if not args.graphs and not folder.is_dir():
            raise UsageError(f"{folder}: golden graphs not found; pass --graphs DIR or --complex_folder DIR")
        graphs, skipped = load_graph_folder(folder)
        graph_source = f"graphs from {folder}" if args.graphs else f"golden graphs from {folder}"

    for role, checkpoint in (("candidate", candidate), ("reference", reference)):
        print(f"{role}: {checkpoint.path}")
        print(f"  sha256: {sha256_file(checkpoint.path)}")
        print(f"  {describe(checkpoint)}")

    differences = tensor_differences(candidate.state_dict, reference.state_dict)
    print("per-tensor max abs difference (candidate vs reference):")
    width = max(map(len, differences))
    for key, difference in differences.items():
        print(f"  {key:<{width}}  {format_difference(difference)}{'' if difference == 0 else '  <- differs'}")
    unequal = [
        key
        for key, tensor in reference.state_dict.items()
        if not (candidate.state_dict[key].dtype == tensor.dtype and torch.equal(candidate.state_dict[key], tensor))
    ]
    if not unequal:
        print(f"weights: IDENTICAL (all {len(differences)} tensors bit-identical)")
    else:
        largest = max(unequal, key=lambda key: math.inf if math.isnan(differences[key]) else differences[key])
        only_conv3 = all(key.startswith("conv3.") for key in unequal)
        note = "; only conv3, which the forward pass never applies" if only_conv3 else ""
        print(
            f"weights: DIFFERENT ({len(unequal)} of {len(differences)} tensors differ; largest"
            f" {format_difference(differences[largest])} at {largest}{note})"
        )

    candidate_model, reference_model = TopoQA(), TopoQA()
    candidate_model.load_state_dict(candidate.state_dict, strict=True)
    reference_model.load_state_dict(reference.state_dict, strict=True)
    candidate_predictions = predict(candidate_model, [item.graph for item in graphs], args.batch_size).double()
    reference_predictions = predict(reference_model, [item.graph for item in graphs], args.batch_size).double()
    gaps = (candidate_predictions - reference_predictions).abs()

    print(f"predictions on {len(graphs)} {graph_source}:")
    for line in skipped:
        print(f"  {line}")
    # Largest first, NaN before everything.
    ranked = sorted(range(len(graphs)), key=lambda i: -math.inf if math.isnan(gaps[i]) else -float(gaps[i]))
    shown = list(range(len(graphs))) if len(graphs) <= 10 else ranked[:5]
    if len(shown) < len(graphs):
        print(f"  (the {len(shown)} largest differences of {len(graphs)})")
    name_width = max(len(graphs[i].name) for i in shown)
    for i in shown:
        print(
            f"  {graphs[i].name:<{name_width}}  candidate {float(candidate_predictions[i]):.9g}"
            f"  reference {float(reference_predictions[i]):.9g}  |diff| {format_difference(float(gaps[i]))}"
        )
    worst = ranked[0]
    largest_gap = float(gaps[worst])
    passed = largest_gap <= args.tolerance  # NaN fails
    print(
        f"max abs prediction difference: {format_difference(largest_gap)} (graph {graphs[worst].name});"
        f" tolerance {args.tolerance:g}"
    )
    print(f"verdict: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python convert.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("to-safetensors", help="Lightning .ckpt -> safetensors (+ training-state companion)")
    command.add_argument("input", help="Lightning .ckpt (or a torch-saved state dict)")
    command.add_argument("output", help="safetensors file to write; the companion goes beside it")
    command.add_argument("--weights-only", action="store_true", help="do not write the training-state companion")
    command.add_argument("--overwrite", action="store_true", help="replace existing output files")
    command.set_defaults(handler=convert_to_safetensors)

    command = commands.add_parser("to-lightning", help="safetensors -> Lightning .ckpt")
    command.add_argument("input", help="safetensors weights (or a torch-saved state dict)")
    command.add_argument("output", help="Lightning .ckpt to write")
    companion = command.add_mutually_exclusive_group()
    companion.add_argument("--training-state", help="companion file to restore (default: the one the input names)")
    companion.add_argument("--weights-only", action="store_true", help="ignore any companion: no optimizer state")
    command.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    command.set_defaults(handler=convert_to_lightning)

    command = commands.add_parser("verify", help="compare a checkpoint with the reference: weights and predictions")
    command.add_argument("candidate", help="checkpoint to verify (.ckpt or .safetensors)")
    command.add_argument("--reference", help="default: $TOPOQA_CHECKPOINT, else topoqa.ckpt.original in "
                         "$TOPOQA_REFERENCE")
    graph_set = command.add_mutually_exclusive_group()
    graph_set.add_argument("--graphs", help="folder of <MODEL>.pt / <MODEL>.safetensors / <MODEL>/graph.safetensors "
                           "graphs (default: the reference golden graphs)")
    graph_set.add_argument("--complex_folder", help="folder of PDB files, featurised first")
    command.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                         help=f"largest allowed prediction difference for PASS (default {DEFAULT_TOLERANCE:g})")
    command.add_argument("--geometry", choices=("xyy", "xyz"), default="xyy",
                         help="edge geometry for --complex_folder (default xyy, the published checkpoint's)")
    command.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="featurisation processes")
    command.add_argument("--batch_size", type=int, default=32, help="graphs per forward pass (default 32)")
    command.set_defaults(handler=verify_checkpoint)

    command = commands.add_parser("inspect", help="format, tensor and parameter counts, epoch/step, metadata")
    command.add_argument("file")
    command.set_defaults(handler=inspect_file)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.handler(args)
    except (CheckpointError, GraphSetError, GraphFileError, UsageError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
