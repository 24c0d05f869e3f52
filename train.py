r"""Retrain TopoQA with a hand-built Accelerate loop that reproduces the reference Lightning run bit for bit.

    accelerate launch --config_file accelerate_config/default.yaml train.py --config configs/production.yaml \
        --graph_dir DIR --train_label_file train.csv --val_label_file val.csv --save_dir runs/retrain

`python train.py ...` works too. With N processes the run is the same, bit for bit, about N times faster:

    accelerate launch --config_file accelerate_config/exact_parallel.yaml --num_processes N train.py ...

(training/exact_parallel.py; `--parallel ddp` with accelerate_config/ddp.yaml is classic DDP, other numbers).
The reference semantics (SPEC 2), in the order they happen below:
seed everything, build the network, Adam; a 2-batch validation sanity pass that leaves no trace in the random
generators; then per epoch: train in CSV order without shuffling, stepping Adam every `accumulate_grad_batches`
batches and after the last batch; validate; keep the 3 best checkpoints by val_loss plus the last one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator, DistributedDataParallelKwargs
from tqdm.auto import tqdm

from data.faults import fault_point
from model.topoqa import TopoQA
from training.batching import make_loader
from training.best_checkpoints import best_copy_name
from training.config import TrainConfig, add_config_arguments, resolve_config
from training.curves import write_curves
from training.determinism import apply_determinism_environment, configure_torch, isolated_rng, seed_everything
from training.exact_parallel import (
    BatchPlan,
    GradientChain,
    ProcessLost,
    RandomStreamDiverged,
    batch_costs,
    replay_dropout,
    sum_over_processes,
)
from training.graph_sets import GraphSet, TrainingDataError, load_graph_sets
from training.metrics import EpochMean
from training.run_folder import EpochSummary, TrainingRun, prepare_save_dir, write_run_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --save_dir from topo_last.ckpt")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --save_dir")
    parser.add_argument("--stop_after_epoch", type=int, help="stop cleanly after this epoch (continue with --resume)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    parser.add_argument(
        "--parallel", choices=("exact", "ddp"), default="exact",
        help="with several processes: 'exact' reproduces the one-process run bit for bit (default); 'ddp' "
        "averages gradients over processes (DistributedDataParallel): another, larger-batch run",
    )
    return parser.parse_args(argv)


def sanity_check(model: torch.nn.Module, dataset, batch_size: int, steps: int, device: torch.device) -> None:
    """Lightning's pre-training pass over a few validation batches; every random generator is restored after."""
    if steps <= 0:
        return
    model.eval()
    with isolated_rng(), torch.no_grad():
        for batch in itertools.islice(make_loader(dataset, batch_size), steps):
            batch = batch.to(device)
            model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)


def explain_termination(process: int) -> None:
    """With several processes, the launcher ends the others with SIGTERM when one of them fails: say so, and how to
    continue, instead of vanishing without a word (the launcher's report names the process that failed)."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        print(f"train.py (process {process}): stopped, because another process of the run ended (the launcher's "
              "report names it). Run the same command with --resume to continue after the last finished epoch.",
              file=sys.stderr, flush=True)  # fmt: skip
        os._exit(128 + signum)  # no clean-up: it could wait on the process that is gone

    signal.signal(signal.SIGTERM, stop)


def train_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader, plan: BatchPlan, chain: GradientChain,
    config: TrainConfig, epoch: int, device: torch.device, show_progress: bool | None,
) -> tuple[torch.Tensor, int]:
    """One epoch, exact with any number of processes (training/exact_parallel.py): every process walks every
    batch in order, computes its own and replays the others' random draws; at the end of each accumulation
    window the gradients are summed in the one-process order and every process takes the same Adam step.
    Returns the epoch's train_mse and its number of optimizer steps."""
    model.train()
    process = chain.process
    losses = torch.zeros(len(loader), device=device)  # per batch, filled in by the batch's process
    steps = 0
    # Creating the iterator draws one random value, as every DataLoader pass does (exactly one: tqdm given the
    # loader itself would create an iterator of its own, a second draw).
    batches = iter(loader)
    for index, batch in enumerate(tqdm(batches, f"epoch {epoch}", len(loader), leave=False, disable=show_progress)):
        window = plan.windows[plan.window_index[index]]
        if plan.owners[index] == process:
            fault_point("train-batch", f"process={process} epoch={epoch} batch={index}")
            batch = batch.to(device)
            prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
            loss = F.mse_loss(prediction, batch.y.view(-1, 1))
            (loss / config.accumulate_grad_batches).backward()  # divided before backward, as the reference did
            chain.after_backward(first_process=process == plan.active(window)[0])
            losses[index] = loss.detach()
        else:
            replay_dropout(model, batch.edge_index.size(1), device)
        if index == window[-1]:  # every accumulate_grad_batches batches, and after the epoch's last batch
            chain.finish_window(plan.active(window))
            optimizer.step()
            optimizer.zero_grad()  # to None: the next window starts like the one-process run's
            steps += 1
    return epoch_mean(sum_over_processes(losses, chain.processes), config.batch_size), steps


def evaluate(
    model: torch.nn.Module, loader, owners: list[int], process: int, processes: int, batch_size: int,
    device: torch.device, show_progress: bool | None,
) -> torch.Tensor:
    """val_loss over the whole validation set: each process computes its own whole batches, the per-batch
    losses are gathered and averaged in set order the way the reference logged them."""
    model.eval()
    losses = torch.zeros(len(loader), device=device)
    with torch.no_grad():
        batches = iter(loader)  # one random draw, as in train_epoch
        for index, batch in enumerate(tqdm(batches, "validation", len(loader), leave=False, disable=show_progress)):
            if owners[index] == process:
                batch = batch.to(device)
                prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
                losses[index] = F.mse_loss(prediction, batch.y.view(-1, 1))
    return epoch_mean(sum_over_processes(losses, processes), batch_size)


def epoch_mean(per_batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Lightning's epoch mean of per-batch values, added in batch order."""
    mean = EpochMean(batch_size)
    for value in per_batch:
        mean.add(value)
    return mean.compute()


def train_epoch_ddp(model, optimizer, loader, accelerator: Accelerator, epoch: int, batch_size: int,
                    show_progress: bool | None) -> tuple[torch.Tensor, int]:
    """One epoch in DDP mode (--parallel ddp): each process takes every N-th batch and gradients are averaged
    over processes, so N > 1 is another run than the one-process one."""
    model.train()
    train_mse = EpochMean(batch_size)
    optimizer_steps = 0
    for batch in tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=show_progress):
        with accelerator.accumulate(model):
            prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
            loss = F.mse_loss(prediction, batch.y.view(-1, 1))
            accelerator.backward(loss)  # divides by accumulate_grad_batches, as the reference did
            optimizer.step()  # a real step only at the end of an accumulation window or of the epoch
            optimizer.zero_grad()
        if accelerator.sync_gradients:
            optimizer_steps += 1
        train_mse.add(loss)
    return train_mse.compute(accelerator.reduce), optimizer_steps


def evaluate_ddp(model: torch.nn.Module, loader, accelerator: Accelerator, batch_size: int) -> torch.Tensor:
    """DDP mode's val_loss over the whole validation set: predictions gathered from every process without duplicates,
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


def load_training_data(config: TrainConfig, accelerator: Accelerator) -> tuple[GraphSet, GraphSet]:
    """Every graph read and checked once, before training; bad input stops here with one list of offenders."""
    try:
        return load_graph_sets(
            [
                ("training graphs", config.graph_dir, config.train_label_file),
                ("validation graphs", config.graph_dir, config.val_label_file),
            ],
            progress=accelerator.is_local_main_process,
        )
    except TrainingDataError as error:
        raise SystemExit(f"train.py: nothing trained.\n{error}") from None


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
    prepare_save_dir(save_dir, accelerator, args.resume, args.overwrite)
    train_set, val_set = load_training_data(config, accelerator)
    fingerprints = {"train": train_set.fingerprint(), "val": val_set.fingerprint()}

    exact = args.parallel == "exact"
    process, processes, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    if processes > 1:
        explain_termination(process)

    # Seed, then build the network: its initial weights equal the reference's for the same seed.
    seed_everything(config.seed)
    model = TopoQA(heads=config.attention_head).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    train_loader = make_loader(train_set, config.batch_size)
    val_loader = make_loader(val_set, config.batch_size)
    if exact:
        # Which process computes which batch: contiguous runs of similar cost in each accumulation window.
        plan = BatchPlan.build(batch_costs(train_set, config.batch_size), config.accumulate_grad_batches, processes)
        val_costs = batch_costs(val_set, config.batch_size)
        val_owners = BatchPlan.build(val_costs, len(val_costs), processes).owners  # validation: one window
        chain = GradientChain(list(model.parameters()), process, processes, device)
    else:
        model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    if args.resume:
        run = TrainingRun.resume(save_dir, config, fingerprints, accelerator, model, optimizer, args.parallel)
        accelerator.print(f"resuming after epoch {run.start_epoch - 1} (global step {run.global_step})")
    else:
        run = TrainingRun.start(save_dir, config, fingerprints, args.parallel)
    if accelerator.is_main_process:
        write_run_report(save_dir, config, accelerator, run.start_epoch, environment, torch_settings, args.resume,
                         parallel=args.parallel)
    if accelerator.mixed_precision != "no":
        accelerator.print(f"warning: {accelerator.mixed_precision} precision: results will differ from the reference")
    if not exact and processes > 1:
        accelerator.print(f"--parallel ddp: gradients averaged over {processes} processes; not the one-process run")

    sanity_check(model, val_set, config.batch_size, config.num_sanity_val_steps, device)

    stop = config.num_epochs if args.stop_after_epoch is None else args.stop_after_epoch + 1
    end_epoch = min(stop, config.num_epochs)
    for epoch in range(run.start_epoch, end_epoch):
        started = time.perf_counter()
        if exact:
            train_mse, optimizer_steps = train_epoch(
                model, optimizer, train_loader, plan, chain, config, epoch, device, show_progress
            )
        else:
            train_mse, optimizer_steps = train_epoch_ddp(
                model, optimizer, train_loader, accelerator, epoch, config.batch_size, show_progress
            )
        run.global_step += optimizer_steps
        train_value = train_mse.item()
        train_seconds = time.perf_counter() - started

        if exact:
            val_loss = evaluate(model, val_loader, val_owners, process, processes, config.batch_size, device,
                                show_progress)
        else:
            val_loss = evaluate_ddp(model, val_loader, accelerator, config.batch_size)
        val_value = val_loss.item()
        summary = EpochSummary(epoch, optimizer_steps, train_value, val_value, train_seconds,
                               time.perf_counter() - started)
        run.save_epoch(summary, accelerator, model, optimizer, batches=(len(train_loader), len(val_loader)))
        if accelerator.is_main_process:
            write_curves(save_dir)  # curves.png, from the metrics.csv just written
        fault_point("epoch-saved", f"epoch={epoch}")  # tests kill the run here, never at a random moment
        accelerator.print(
            f"epoch {epoch + 1}/{config.num_epochs}  train_mse {train_value:.6f}  val_loss {val_value:.6f}  "
            f"best {float(run.best.best_model_score):.6f} ({Path(run.best.best_model_path).name})  "
            f"step {run.global_step}  {summary.epoch_seconds:.1f}s"
        )

    if end_epoch < config.num_epochs:
        accelerator.print(f"stopped after epoch {end_epoch - 1}; continue with --resume")
    elif run.best.best_model_score is not None:
        best_copy = save_dir / best_copy_name(float(run.best.best_model_score))
        accelerator.print(f"done: best val_loss {float(run.best.best_model_score):.5f} in {best_copy}")
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except ProcessLost as error:
        raise SystemExit(
            f"train.py: {error}: it died or was killed (the launcher's report names it). Run the same command "
            "with --resume to continue after the last finished epoch."
        ) from None
    except RandomStreamDiverged as error:
        raise SystemExit(f"train.py: stopped: {error}. The epochs saved so far are exact.") from None
    except KeyboardInterrupt:
        raise SystemExit(
            "train.py: interrupted. Run the same command with --resume to continue after the last "
            "finished epoch (topo_last.ckpt)."
        ) from None
