r"""Retrain TopoQA with a hand-built Accelerate loop that reproduces the reference Lightning run bit for bit.

    accelerate launch --config_file accelerate_config/default.yaml train.py --config configs/production.yaml \
        --graph_dir DIR --train_label_file train.csv --val_label_file val.csv --save_dir runs/retrain

`python train.py ...` works too. The reference semantics (SPEC 2), in the order they happen below:
seed everything, build the network, Adam; a 2-batch validation sanity pass that leaves no trace in the random
generators; then per epoch: train in CSV order without shuffling, stepping Adam every `accumulate_grad_batches`
batches and after the last batch; validate; keep the 3 best checkpoints by val_loss plus the last one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from data.faults import fault_point
from model.checkpoint import CheckpointError, read_checkpoint, write_lightning, write_safetensors
from model.topoqa import TopoQA
from training.batching import make_loader
from training.best_checkpoints import LAST_NAME, STATE_KEY, BestCheckpoints, TopkDecision, best_copy_name
from training.config import TrainConfig, add_config_arguments, resolve_config, resume_mismatches
from training.determinism import (
    apply_determinism_environment,
    capture_rng_state,
    configure_torch,
    environment_report,
    isolated_rng,
    restore_rng_state,
    seed_everything,
)
from training.graph_sets import TrainingDataError, load_graph_sets
from training.lightning_checkpoint import lightning_checkpoint, lightning_loops
from training.metrics import METRICS_COLUMNS, EpochMean, metrics_rows, write_csv

RESUME_KEY = "topoqa_resume"  # extra top-level entry of topo_last.ckpt; Lightning ignores it
RESUME_FORMAT_VERSION = 1
TIMING_COLUMNS = ["epoch", "train_seconds", "val_seconds", "epoch_seconds"]
OUTPUT_PATTERNS = ("topo_*.ckpt", "topo_*.safetensors", "metrics.csv", "timings.csv", "config.yaml", "environment.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --save_dir from topo_last.ckpt")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --save_dir")
    parser.add_argument("--stop_after_epoch", type=int, help="stop cleanly after this epoch (continue with --resume)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    return parser.parse_args(argv)


def earlier_outputs(save_dir: Path) -> list[Path]:
    return sorted(path for pattern in OUTPUT_PATTERNS for path in save_dir.glob(pattern))


def check_save_dir(save_dir: Path, resume: bool, overwrite: bool) -> None:
    """Never clobber an earlier run silently: it must be resumed or explicitly overwritten."""
    found = earlier_outputs(save_dir)
    if resume and not (save_dir / LAST_NAME).is_file():
        raise SystemExit(f"--resume: {save_dir / LAST_NAME} not found, nothing to resume")
    if found and not resume and not overwrite:
        names = ", ".join(path.name for path in found[:4]) + (" ..." if len(found) > 4 else "")
        raise SystemExit(
            f"{save_dir} already holds a training run ({names}). "
            "Continue it with --resume, replace it with --overwrite, or choose another --save_dir."
        )


def remove_unlisted_checkpoints(save_dir: Path, best: BestCheckpoints) -> None:
    """On resume: drop what an interrupted epoch wrote before its topo_last.ckpt (it is redone identically):
    top-k and best-copy files the restored state does not list, and half-written temporary files."""
    keep = {Path(path).name for path in best.best_k_models}
    if best.best_model_score is not None:
        keep.add(best_copy_name(float(best.best_model_score)))
    for path in [*save_dir.glob("topo_epoch=*.ckpt"), *save_dir.glob("topo_best_val_loss=*.ckpt")]:
        if path.name not in keep:
            path.unlink()
    for pattern in (".topo_*.tmp", ".metrics.csv.*.tmp", ".timings.csv.*.tmp", "topo_best_val_loss=*.ckpt.tmp"):
        for path in save_dir.glob(pattern):
            path.unlink()


def sanity_check(model: torch.nn.Module, dataset, batch_size: int, steps: int, device: torch.device) -> None:
    """Lightning's pre-training pass over a few validation batches; every random generator is restored after."""
    if steps <= 0:
        return
    model.eval()
    with isolated_rng(), torch.no_grad():
        for batch in itertools.islice(make_loader(dataset, batch_size), steps):
            batch = batch.to(device)
            model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)


def evaluate(model: torch.nn.Module, loader, accelerator: Accelerator, batch_size: int) -> torch.Tensor:
    """val_loss over the whole validation set: predictions gathered from every process without duplicates,
    put back in set order, then averaged per batch of `batch_size` the way the reference logged it."""
    model.eval()
    indices, predictions, labels = [], [], []
    with torch.no_grad():
        show_progress = None if accelerator.is_local_main_process else True
        for batch in tqdm(loader, desc="validation", leave=False, disable=show_progress):
            prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch).view(-1)
            index, prediction, label = accelerator.gather_for_metrics((batch.sample_id, prediction, batch.y))
            indices.append(index)
            predictions.append(prediction)
            labels.append(label)
    index = torch.cat(indices)
    order = torch.argsort(index)
    size = len(loader.dataset)
    if not torch.equal(index[order].cpu(), torch.arange(size)):
        raise RuntimeError(f"validation gathered {index.numel()} predictions for {size} graphs (lost or duplicated)")
    predictions, labels = torch.cat(predictions)[order], torch.cat(labels)[order]
    val_loss = EpochMean(batch_size)
    for start in range(0, size, batch_size):
        chunk = slice(start, start + batch_size)
        val_loss.add(F.mse_loss(predictions[chunk].clone().view(-1, 1), labels[chunk].clone().view(-1, 1)))
    return val_loss.compute()


@dataclass
class RunState:
    """Where the run stands after an epoch: what --resume restores besides the weights and Adam."""

    best: BestCheckpoints
    start_epoch: int = 0
    global_step: int = 0
    metric_rows: list = field(default_factory=list)
    timing_rows: list = field(default_factory=list)


def resume_run(save_dir, config, fingerprints, accelerator, model, optimizer) -> RunState:
    """Restore model, Adam, best-k bookkeeping, counters, metrics and RNG from topo_last.ckpt."""
    try:
        last = read_checkpoint(save_dir / LAST_NAME)
    except CheckpointError as error:
        raise SystemExit(f"--resume: {error}") from None
    saved = (last.lightning or {}).get(RESUME_KEY)
    if not saved or saved.get("format_version") != RESUME_FORMAT_VERSION:
        raise SystemExit(f"--resume: {save_dir / LAST_NAME} has no train.py resume state")
    problems = resume_mismatches(saved["config"], config)
    problems += [
        f"{split} set changed (names or labels)"
        for split in fingerprints
        if saved["fingerprints"][split] != fingerprints[split]
    ]
    if len(saved["rng_states"]) != accelerator.num_processes:
        problems.append(f"processes: {len(saved['rng_states'])} -> {accelerator.num_processes}")
    if problems:
        raise SystemExit(f"--resume: the run in {save_dir} was made with other settings:\n  " + "\n  ".join(problems))
    accelerator.unwrap_model(model).load_state_dict(last.state_dict)
    optimizer.load_state_dict(last.lightning["optimizer_states"][0])
    state = RunState(
        BestCheckpoints(save_dir),
        last.lightning["epoch"] + 1,
        last.lightning["global_step"],
        saved["metrics"],
        saved["timings"],
    )
    state.best.load_state_dict(last.lightning["callbacks"][STATE_KEY])
    if accelerator.is_main_process:
        remove_unlisted_checkpoints(save_dir, state.best)
    # Back to the random state right after the saved epoch, so the next epoch draws what it would have.
    restore_rng_state(saved["rng_states"][accelerator.process_index])
    return state


def write_run_report(
    save_dir: Path,
    config: TrainConfig,
    accelerator: Accelerator,
    start_epoch: int,
    environment: dict,
    torch_settings: dict,
    resume: bool,
) -> None:
    """config.yaml, and environment.json with one entry per session (first start, then each resume)."""
    (save_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    report_path = save_dir / "environment.json"
    sessions = json.loads(report_path.read_text())["sessions"] if resume and report_path.exists() else []
    sessions.append(
        {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "start_epoch": start_epoch,
            "command": sys.argv,
            "num_processes": accelerator.num_processes,
            "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision,
            "environment_variables_applied": environment,
            "torch_settings": torch_settings,
            "seeded": {"python_random": config.seed, "numpy": config.seed, "torch_cpu_and_cuda": config.seed},
            "label_order": "label-file (CSV) order; the reference iterated a Python set (hash order)",
            "environment": environment_report(),
        }
    )
    report_path.write_text(json.dumps({"sessions": sessions}, indent=2) + "\n")


def save_epoch(
    save_dir: Path,
    state: RunState,
    topk: TopkDecision,
    epoch: int,
    steps_this_epoch: int,
    batches: tuple[int, int],
    weights: dict,
    optimizer_state: dict,
    resume_state: dict,
    metadata: dict,
) -> None:
    """Write one epoch's files. topo_last.ckpt, which carries the resume state, goes last: it is the commit
    point, so an interruption anywhere before it is redone identically by --resume. The checkpoints' contents
    follow Lightning's order: the top-k file is saved (and the one it displaced removed) before the last."""
    best = state.best
    loops = lightning_loops(epoch, state.global_step, batches[0], steps_this_epoch, batches[1])

    def checkpoint() -> dict:
        return lightning_checkpoint(
            weights,
            epoch=epoch,
            global_step=state.global_step,
            loops=loops,
            callbacks={STATE_KEY: best.state_dict()},
            optimizer_state=optimizer_state,
        )

    if topk.save:
        write_lightning(topk.save, checkpoint(), overwrite=True)
    if topk.remove:
        Path(topk.remove).unlink(missing_ok=True)
    if topk.save and topk.save == best.best_model_path:
        for old in save_dir.glob("topo_best_val_loss=*.ckpt"):
            old.unlink()
        copy = save_dir / best_copy_name(float(best.best_model_score))
        shutil.copyfile(topk.save, f"{copy}.tmp")
        os.replace(f"{copy}.tmp", copy)
        write_safetensors(save_dir / "topo_best.safetensors", weights, metadata, overwrite=True)
    write_safetensors(save_dir / "topo_last.safetensors", weights, metadata, overwrite=True)
    write_csv(save_dir / "metrics.csv", METRICS_COLUMNS, state.metric_rows)
    write_csv(save_dir / "timings.csv", TIMING_COLUMNS, state.timing_rows)
    best.last_model_path = best.path(LAST_NAME)
    write_lightning(save_dir / LAST_NAME, {**checkpoint(), RESUME_KEY: resume_state}, overwrite=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        config: TrainConfig = resolve_config(args)
    except (ValueError, OSError, yaml.YAMLError) as error:
        raise SystemExit(f"train.py: {error}") from None

    # Determinism settings that must exist before CUDA starts (the Accelerator may start it).
    environment = apply_determinism_environment() if config.deterministic else {}
    accelerator = Accelerator(
        gradient_accumulation_steps=config.accumulate_grad_batches,
        # Without a GPU, processes started by `accelerate launch --num_processes N` talk over gloo on the CPU.
        cpu=args.cpu or not torch.cuda.is_available(),
        # conv3 is in the state dict but never used in forward: DDP must expect parameters without gradients.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    torch_settings = configure_torch(config.deterministic, config.num_threads)
    show_progress = None if accelerator.is_local_main_process else True  # tqdm: None = only on a terminal
    save_dir = Path(config.save_dir)
    check_save_dir(save_dir, args.resume, args.overwrite)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if args.overwrite and not args.resume:
            for path in earlier_outputs(save_dir):
                path.unlink()
        save_dir.mkdir(parents=True, exist_ok=True)

    # Every graph is read and checked once, before training; bad input stops here with one list of offenders.
    try:
        train_set, val_set = load_graph_sets(
            [
                ("training graphs", config.graph_dir, config.train_label_file),
                ("validation graphs", config.graph_dir, config.val_label_file),
            ],
            progress=accelerator.is_local_main_process,
        )
    except TrainingDataError as error:
        raise SystemExit(f"train.py: nothing trained.\n{error}") from None
    fingerprints = {"train": train_set.fingerprint(), "val": val_set.fingerprint()}

    # Seed, then build the network: its initial weights equal the reference's for the same seed.
    seed_everything(config.seed)
    model = TopoQA(heads=config.attention_head)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    train_loader = make_loader(train_set, config.batch_size)
    val_loader = make_loader(val_set, config.batch_size)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    if args.resume:
        state = resume_run(save_dir, config, fingerprints, accelerator, model, optimizer)
        accelerator.print(f"resuming after epoch {state.start_epoch - 1} (global step {state.global_step})")
    else:
        state = RunState(BestCheckpoints(save_dir))
    if accelerator.is_main_process:
        write_run_report(save_dir, config, accelerator, state.start_epoch, environment, torch_settings, args.resume)
    if accelerator.mixed_precision != "no":
        accelerator.print(f"warning: {accelerator.mixed_precision} precision: results will differ from the reference")

    sanity_check(model, val_set, config.batch_size, config.num_sanity_val_steps, accelerator.device)

    end_epoch = config.num_epochs
    if args.stop_after_epoch is not None:
        end_epoch = min(args.stop_after_epoch + 1, end_epoch)
    for epoch in range(state.start_epoch, end_epoch):
        started = time.perf_counter()
        model.train()
        train_mse = EpochMean(config.batch_size)
        steps_this_epoch = 0
        for batch in tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=show_progress):
            with accelerator.accumulate(model):
                prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
                loss = F.mse_loss(prediction, batch.y.view(-1, 1))
                accelerator.backward(loss)  # divides by accumulate_grad_batches, as the reference did
                optimizer.step()  # a real step only at the end of an accumulation window or of the epoch
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                state.global_step += 1
                steps_this_epoch += 1
            train_mse.add(loss)
        train_value = train_mse.compute(accelerator.reduce).item()
        train_seconds = time.perf_counter() - started

        val_value = evaluate(model, val_loader, accelerator, config.batch_size).item()
        epoch_seconds = time.perf_counter() - started
        # Lightning's CSVLogger rows carry step = global_step - 1 at the end of the epoch.
        state.metric_rows += metrics_rows(epoch, state.global_step - 1, train_value, val_value)
        state.timing_rows.append(
            {
                "epoch": epoch,
                "train_seconds": round(train_seconds, 4),
                "val_seconds": round(epoch_seconds - train_seconds, 4),
                "epoch_seconds": round(epoch_seconds, 4),
            }
        )
        rng_states = gather_object([capture_rng_state()])  # one per process, for --resume
        topk = state.best.update(epoch, torch.tensor(val_value, dtype=torch.float32))
        if accelerator.is_main_process:
            resume_state = {
                "format_version": RESUME_FORMAT_VERSION,
                "config": config.to_dict(),
                "fingerprints": fingerprints,
                "rng_states": rng_states,
                "metrics": state.metric_rows,
                "timings": state.timing_rows,
            }
            metadata = {
                "epoch": epoch,
                "global_step": state.global_step,
                "val_loss": val_value,
                "train_mse": train_value,
                "config": config.to_dict(),
            }
            save_epoch(
                save_dir,
                state,
                topk,
                epoch,
                steps_this_epoch,
                (len(train_loader), len(val_loader)),
                accelerator.unwrap_model(model).state_dict(),
                optimizer.optimizer.state_dict(),
                resume_state,
                metadata,
            )
            fault_point("epoch-saved", f"epoch={epoch}")  # tests kill the run here (data/faults.py)
        accelerator.wait_for_everyone()
        accelerator.print(
            f"epoch {epoch + 1}/{config.num_epochs}  train_mse {train_value:.6f}  val_loss {val_value:.6f}  "
            f"best {float(state.best.best_model_score):.6f} ({Path(state.best.best_model_path).name})  "
            f"step {state.global_step}  {epoch_seconds:.1f}s"
        )

    if end_epoch < config.num_epochs:
        accelerator.print(f"stopped after epoch {end_epoch - 1}; continue with --resume")
    elif state.best.best_model_score is not None:
        best_copy = save_dir / best_copy_name(float(state.best.best_model_score))
        accelerator.print(f"done: best val_loss {float(state.best.best_model_score):.5f} in {best_copy}")
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(
            "train.py: interrupted. Run the same command with --resume to continue after the last "
            "finished epoch (topo_last.ckpt)."
        ) from None
