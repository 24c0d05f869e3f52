"""A training run's folder: what train.py writes after each epoch, and what `--resume` restores from it.

Files: Lightning-layout checkpoints (the 3 best by val_loss, `topo_last.ckpt`, a copy of the best), safetensors
weights (`topo_best`, `topo_last`), `metrics.csv` as Lightning's CSV logger writes it, `timings.csv`,
`config.yaml` and `environment.json`. `topo_last.ckpt` also carries the resume state and is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import gather_object

from data.files import write_csv, write_text_atomically
from model.checkpoint import CheckpointError, read_checkpoint, write_lightning, write_safetensors
from training.best_checkpoints import LAST_NAME, STATE_KEY, BestCheckpoints, best_copy_name
from training.config import TrainConfig, resume_mismatches
from training.determinism import capture_rng_state, environment_report, restore_rng_state
from training.lightning_checkpoint import lightning_checkpoint, lightning_loops
from training.metrics import METRICS_COLUMNS, metrics_rows

RESUME_KEY = "topoqa_resume"  # extra top-level entry of topo_last.ckpt; Lightning ignores it
RESUME_FORMAT_VERSION = 1
TIMING_COLUMNS = ["epoch", "train_seconds", "val_seconds", "epoch_seconds"]
OUTPUT_PATTERNS = (
    "topo_*.ckpt", "topo_*.safetensors", "metrics.csv", "timings.csv", "config.yaml", "environment.json", "curves.png",
)


def earlier_outputs(save_dir: Path) -> list[Path]:
    return sorted(path for pattern in OUTPUT_PATTERNS for path in save_dir.glob(pattern))


def prepare_save_dir(save_dir: Path, accelerator: Accelerator, resume: bool, overwrite: bool) -> None:
    """Never clobber an earlier run silently: it must be resumed or explicitly overwritten (then removed here)."""
    found = earlier_outputs(save_dir)
    if resume and not (save_dir / LAST_NAME).is_file():
        raise SystemExit(f"--resume: {save_dir / LAST_NAME} not found, nothing to resume")
    if found and not resume and not overwrite:
        names = ", ".join(path.name for path in found[:4]) + (" ..." if len(found) > 4 else "")
        raise SystemExit(
            f"{save_dir} already holds a training run ({names}). "
            "Continue it with --resume, replace it with --overwrite, or choose another --save_dir."
        )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if overwrite and not resume:
            for path in found:
                path.unlink()
        save_dir.mkdir(parents=True, exist_ok=True)


@dataclass
class EpochSummary:
    """What one epoch did, as train.py measured it."""

    epoch: int
    optimizer_steps: int
    train_mse: float
    val_loss: float
    train_seconds: float
    epoch_seconds: float


@dataclass
class TrainingRun:
    """Where the run stands after an epoch: counters, best-k bookkeeping, metrics; written by `save_epoch`."""

    save_dir: Path
    config: TrainConfig
    fingerprints: dict[str, str]  # per split: names and labels, so that --resume refuses another data set
    best: BestCheckpoints
    start_epoch: int = 0
    global_step: int = 0
    metric_rows: list = field(default_factory=list)
    timing_rows: list = field(default_factory=list)
    # "exact": every process holds the one-process run's random state, so one is saved and any number of
    # processes may resume; "ddp": one state per process, and the number of processes must not change.
    parallel: str = "exact"

    @classmethod
    def start(
        cls, save_dir: Path, config: TrainConfig, fingerprints: dict[str, str], parallel: str = "exact"
    ) -> TrainingRun:
        return cls(save_dir, config, fingerprints, BestCheckpoints(save_dir), parallel=parallel)

    @classmethod
    def resume(
        cls, save_dir: Path, config: TrainConfig, fingerprints: dict[str, str], accelerator: Accelerator,
        model: torch.nn.Module, optimizer: torch.optim.Optimizer, parallel: str = "exact",
    ) -> TrainingRun:
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
        # Runs saved before the parallel modes existed: one random state = one process, which is exact mode.
        saved_parallel = saved.get("parallel", "exact" if len(saved["rng_states"]) == 1 else "ddp")
        if saved_parallel != parallel:
            problems.append(f"parallel mode: {saved_parallel} -> {parallel}")
        elif parallel == "ddp" and len(saved["rng_states"]) != accelerator.num_processes:
            problems.append(f"processes: {len(saved['rng_states'])} -> {accelerator.num_processes}")
        if problems:
            raise SystemExit(
                f"--resume: the run in {save_dir} was made with other settings:\n  " + "\n  ".join(problems)
            )
        accelerator.unwrap_model(model).load_state_dict(last.state_dict)
        optimizer.load_state_dict(last.lightning["optimizer_states"][0])
        run = cls(
            save_dir, config, fingerprints, BestCheckpoints(save_dir), last.lightning["epoch"] + 1,
            last.lightning["global_step"], saved["metrics"], saved["timings"], parallel,
        )
        run.best.load_state_dict(last.lightning["callbacks"][STATE_KEY])
        if accelerator.is_main_process:
            remove_unlisted_checkpoints(save_dir, run.best)
        # Back to the random state right after the saved epoch, so the next epoch draws what it would have.
        restore_rng_state(saved["rng_states"][0 if parallel == "exact" else accelerator.process_index])
        return run

    def save_epoch(
        self, summary: EpochSummary, accelerator: Accelerator, model: torch.nn.Module,
        optimizer: torch.optim.Optimizer, batches: tuple[int, int],
    ) -> None:
        """Record the epoch and write its files (main process); every process must call it.

        `batches`: training and validation batches per epoch, for Lightning's loop counters. topo_last.ckpt,
        which carries the resume state, goes last: it is the commit point, so an interruption anywhere before
        it is redone identically by --resume.
        """
        epoch = summary.epoch
        # Lightning's CSVLogger rows carry step = global_step - 1 at the end of the epoch.
        self.metric_rows += metrics_rows(epoch, self.global_step - 1, summary.train_mse, summary.val_loss)
        self.timing_rows.append(
            {
                "epoch": epoch,
                "train_seconds": round(summary.train_seconds, 4),
                "val_seconds": round(summary.epoch_seconds - summary.train_seconds, 4),
                "epoch_seconds": round(summary.epoch_seconds, 4),
            }
        )
        # For --resume: exact mode's processes all hold the same state (checked after every window); DDP's differ.
        rng_states = [shared_rng_state()] if self.parallel == "exact" else gather_object([capture_rng_state()])
        topk = self.best.update(epoch, torch.tensor(summary.val_loss, dtype=torch.float32))
        if accelerator.is_main_process:
            self._write_epoch_files(
                summary, topk, rng_states, accelerator.unwrap_model(model).state_dict(),
                optimizer.state_dict(), batches,
            )
        accelerator.wait_for_everyone()

    def _write_epoch_files(self, summary, topk, rng_states, weights, optimizer_state, batches) -> None:
        # The checkpoints' contents follow Lightning's order: the top-k file is saved (and the one it displaced
        # removed) before the last.
        config = self.config.to_dict()
        resume_state = {
            "format_version": RESUME_FORMAT_VERSION, "config": config, "fingerprints": self.fingerprints,
            "rng_states": rng_states, "metrics": self.metric_rows, "timings": self.timing_rows,
            "parallel": self.parallel,
        }
        metadata = {
            "epoch": summary.epoch, "global_step": self.global_step, "val_loss": summary.val_loss,
            "train_mse": summary.train_mse, "config": config,
        }
        best = self.best
        loops = lightning_loops(summary.epoch, self.global_step, batches[0], summary.optimizer_steps, batches[1])

        def checkpoint() -> dict:
            return lightning_checkpoint(
                weights, epoch=summary.epoch, global_step=self.global_step, loops=loops,
                callbacks={STATE_KEY: best.state_dict()}, optimizer_state=optimizer_state,
            )

        if topk.save:
            write_lightning(topk.save, checkpoint(), overwrite=True)
        if topk.remove:
            Path(topk.remove).unlink(missing_ok=True)
        if topk.save and topk.save == best.best_model_path:
            for old in self.save_dir.glob("topo_best_val_loss=*.ckpt"):
                old.unlink()
            copy = self.save_dir / best_copy_name(float(best.best_model_score))
            shutil.copyfile(topk.save, f"{copy}.tmp")
            os.replace(f"{copy}.tmp", copy)
            write_safetensors(self.save_dir / "topo_best.safetensors", weights, metadata, overwrite=True)
        write_safetensors(self.save_dir / "topo_last.safetensors", weights, metadata, overwrite=True)
        for name, columns, rows in (("metrics.csv", METRICS_COLUMNS, self.metric_rows),
                                    ("timings.csv", TIMING_COLUMNS, self.timing_rows)):
            write_csv(self.save_dir / name, columns, rows, overwrite=True, line_terminator="\r\n")
        best.last_model_path = best.path(LAST_NAME)
        write_lightning(self.save_dir / LAST_NAME, {**checkpoint(), RESUME_KEY: resume_state}, overwrite=True)


def shared_rng_state() -> dict:
    """Exact mode's random state, the same in every process. Each process draws on its own GPU's generator, so
    the one that matters is the current device's: it is saved for every device, and whichever device a process
    resumes on gets it (a one-process run never draws on the others)."""
    state = capture_rng_state()
    if state["cuda"]:
        state["cuda"] = [torch.cuda.get_rng_state()] * len(state["cuda"])
    return state


def remove_unlisted_checkpoints(save_dir: Path, best: BestCheckpoints) -> None:
    """On resume: drop what an interrupted epoch wrote before its topo_last.ckpt (it is redone identically):
    top-k and best-copy files the restored state does not list, and half-written temporary files."""
    keep = {Path(path).name for path in best.best_k_models}
    if best.best_model_score is not None:
        keep.add(best_copy_name(float(best.best_model_score)))
    for path in [*save_dir.glob("topo_epoch=*.ckpt"), *save_dir.glob("topo_best_val_loss=*.ckpt")]:
        if path.name not in keep:
            path.unlink()
    for pattern in (".*.tmp", "topo_best_val_loss=*.ckpt.tmp"):  # data.files.atomic_write's, and the best copy's
        for path in save_dir.glob(pattern):
            path.unlink()


def write_run_report(
    save_dir: Path, config: TrainConfig, accelerator: Accelerator, start_epoch: int, environment: dict,
    torch_settings: dict, resume: bool, parallel: str = "exact",
) -> None:
    """config.yaml, and environment.json with one entry per session (first start, then each resume)."""
    write_text_atomically(save_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False), overwrite=True)
    report_path = save_dir / "environment.json"
    sessions = json.loads(report_path.read_text())["sessions"] if resume and report_path.exists() else []
    sessions.append(
        {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "start_epoch": start_epoch,
            "command": sys.argv,
            "num_processes": accelerator.num_processes,
            "parallel": {
                "exact": "exact: the one-process run's numbers, bit for bit, whatever the number of processes",
                "ddp": "ddp: gradients averaged over processes (DistributedDataParallel), not the one-process run",
            }[parallel] if accelerator.num_processes > 1 else "exact: one process",
            "parallel_mode": parallel,
            "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision,
            "environment_variables_applied": environment,
            "torch_settings": torch_settings,
            "seeded": {"python_random": config.seed, "numpy": config.seed, "torch_cpu_and_cuda": config.seed},
            "label_order": "label-file (CSV) order; the reference iterated a Python set (hash order)",
            "environment": environment_report(),
        }
    )
    write_text_atomically(report_path, json.dumps({"sessions": sessions}, indent=2) + "\n", overwrite=True)
