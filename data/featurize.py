"""PDB complex -> TopoQA graph (SPEC 1.1-1.4), one complex or a whole folder (`featurize.py` is the command).

The featurisation itself is torch-free (NumPy arrays in and out, see `GraphArrays`), so that worker processes
never import torch; the network reads the arrays directly, `.graph` wraps them into the PyG `Data` of graph files.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import warnings
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cached_property
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from data.dssp import DsspRun, residues_within_reach
from data.edges import GEOMETRIES, GEOMETRY_XYY, decimal_ca_coordinates, edge_features
from data.graph_arrays import GRAPH_FORMAT_VERSION, GraphArrays
from data.graph_cache import GraphCache, cache_key, featurisation_fingerprint
from data.interface import interface_ids, interface_residues
from data.node_features import node_table
from data.structure import (
    UnscorableComplex,
    first_line,
    parse_structure,
    read_first_model_text,
    require_coordinates,
)
from data.topology import default_workers, topology_table
from data.workers import prepare_worker

if TYPE_CHECKING:
    from torch_geometric.data import Data

__all__ = [
    "FeatureStages", "FeaturizeJobs", "FeaturizeResult", "GraphArrays", "UnscorableComplex", "complex_name",
    "featurize_arrays", "featurize_complex", "featurize_many", "featurize_one", "featurize_stages",
]

PDB_SUFFIXES = (".pdb.gz", ".ent.gz", ".pdb", ".ent")


def complex_name(path: str | os.PathLike) -> str:
    """File name without its PDB extension (`a.b.pdb` -> `a.b`, `x.pdb.gz` -> `x`)."""
    name = Path(path).name
    for suffix in PDB_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class FeatureStages:
    """Every intermediate stage of one complex, for parity checks against the reference outputs."""

    name: str
    interface_ids: list[str]
    interface_ca: np.ndarray  # float32 [R, 3]
    topology: np.ndarray  # float64 [R, 140], raw
    node_ids: list[str]
    node_features: np.ndarray  # float64 [N, 172]
    arrays: GraphArrays

    @cached_property
    def graph(self) -> Data:
        """The PyG graph (imports torch)."""
        return self.arrays.to_data()


def featurize_stages(
    path: str | os.PathLike, geometry: str = GEOMETRY_XYY, workers: int | None = None
) -> FeatureStages:
    """Featurise one complex and keep every stage. Raises UnscorableComplex for input that cannot be scored.

    `workers` processes share the alpha complexes (default: the CPUs available but one); mkdssp runs alongside.
    """
    workers = default_workers() if workers is None else workers
    if geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    text = read_first_model_text(path)
    require_coordinates(text)
    structure = parse_structure(text)
    interface = interface_residues(structure)
    # mkdssp runs in the background from here on, while we compute the topology. Only the interface residues'
    # accessibility is read: residues out of reach of them go to mkdssp as backbone only (~25% faster on 27,000 atoms).
    dssp = DsspRun(text, residues_within_reach(structure, interface))
    try:
        ids = interface_ids(structure, interface)
        ca = structure.atom_xyz[structure.residue_ca[interface]]
        topology = topology_table(structure.atom_xyz, structure.atom_name_initial, ca, workers)
        dssp_residues = dssp.result()
    finally:
        dssp.close()

    kept, features = node_table(structure, interface, topology, dssp_residues)
    if len(kept) == 0:
        raise UnscorableComplex("no interface residue left after DSSP (none reported or all with unknown rASA)")
    nodes = interface[kept]
    edge_index, edge_attr = edge_features(structure, nodes, decimal_ca_coordinates(ca[kept]), geometry)
    if edge_index.shape[1] == 0:
        raise UnscorableComplex("no interface edge: no cross-chain node pair under 10 A after DSSP filtering")
    name = complex_name(path)
    arrays = GraphArrays(
        name=name, x=features.astype(np.float32), edge_index=edge_index, edge_attr=edge_attr.astype(np.float32),
        geometry=geometry, feature_version=GRAPH_FORMAT_VERSION,
    )
    return FeatureStages(
        name=name, interface_ids=ids, interface_ca=ca, topology=topology,
        node_ids=[ids[k] for k in kept], node_features=features, arrays=arrays,
    )


def featurize_arrays(
    path: str | os.PathLike, geometry: str = GEOMETRY_XYY, workers: int | None = None
) -> GraphArrays:
    """One PDB complex -> graph arrays (x float32 [N,172], edge_index int64 [2,E], edge_attr float32 [E,11])."""
    return featurize_stages(path, geometry, workers).arrays


def featurize_complex(path: str | os.PathLike, geometry: str = GEOMETRY_XYY, workers: int | None = None) -> Data:
    """One PDB complex -> PyG graph (x [N,172], edge_index [2,E], edge_attr [E,11], name, geometry, version)."""
    return featurize_arrays(path, geometry, workers).to_data()


@dataclass
class FeaturizeResult:
    """Outcome for one input file: graph arrays, or the one-line reason it could not be scored."""

    path: Path
    name: str
    arrays: GraphArrays | None
    reason: str | None
    cached: bool = False
    seconds: float = 0.0

    @cached_property
    def graph(self) -> Data | None:
        """The PyG graph (imports torch), or None when the file could not be scored."""
        return self.arrays.to_data() if self.arrays is not None else None


def featurize_one(
    path: str | os.PathLike, geometry: str = GEOMETRY_XYY, cache_dir: str | os.PathLike | None = None,
    workers: int | None = 1,
) -> FeaturizeResult:
    """Featurise one file, never raising for bad input: failures become `reason`. Uses the cache when given."""
    path = Path(path)
    name = complex_name(path)
    started = time.perf_counter()
    cache = GraphCache(cache_dir) if cache_dir is not None else None
    key = None
    try:
        if cache is not None:
            key = cache_key(path, geometry)
            hit = cache.get(key, name)
            if hit is not None:
                return FeaturizeResult(path, name, *hit, True, time.perf_counter() - started)
        arrays = featurize_arrays(path, geometry, workers)
        if cache is not None:
            store_quietly(cache.put_graph, key, arrays)
        return FeaturizeResult(path, name, arrays, None, False, time.perf_counter() - started)
    except UnscorableComplex as error:
        if cache is not None and key is not None:
            store_quietly(cache.put_reason, key, str(error))
        return FeaturizeResult(path, name, None, str(error), False, time.perf_counter() - started)
    except FileNotFoundError:
        return FeaturizeResult(path, name, None, "cannot read file: not found", False, time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - one bad complex must not stop a batch
        reason = f"internal error: {type(error).__name__}: {first_line(error)}"
        return FeaturizeResult(path, name, None, reason, False, time.perf_counter() - started)


def store_quietly(put, key: str, value) -> None:
    """A cache that cannot be written (full disk, read-only folder) must not cost the user a result."""
    try:
        put(key, value)
    except OSError as error:
        warnings.warn(f"featurisation cache not written: {error}", stacklevel=2)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class FeaturizeJobs:
    """Featurisation of many files. With `jobs` > 1 (or `background`), worker processes start on it at once,
    so the caller can do other work (import torch, load a checkpoint) before collecting `results()`.

    Workers are forked (where available) and never import torch; when the caller had imported it already,
    they keep away from its OpenMP threads. Files go out largest first, so that the long complexes start early
    and the short ones fill in at the end; results come back in input order. In one process (`jobs` 1, not
    `background`), each complex's alpha complexes are spread over `workers` processes (default: the CPUs
    available but one, left to mkdssp).

    A `background` caller keeps a CPU busy itself until it asks for the results, so until then one complex fewer
    runs at a time (measured on 2 cores: sharing them three ways costs ~10% more CPU time and delays the caller).
    """

    def __init__(
        self, paths: list[str | os.PathLike], *, geometry: str = GEOMETRY_XYY, jobs: int = 1,
        cache_dir: str | os.PathLike | None = None, workers: int | None = None, background: bool = False,
    ):
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
        self.paths = [Path(p) for p in paths]
        self._arguments = (geometry, cache_dir, workers)
        self._pool: ProcessPoolExecutor | None = None
        processes = min(jobs, len(self.paths))
        if not self.paths or (processes <= 1 and not background):
            return
        if cache_dir is not None:
            featurisation_fingerprint()  # computed once here, inherited by forked workers
        # A single background process may still share each complex's alpha complexes with forked helpers.
        self._worker_helpers = workers if processes <= 1 else 1
        slots = processes - 1 if background and processes > 1 else processes
        self._extra_slots = processes - slots
        self._free_slots = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._pending = deque(sorted(range(len(self.paths)), key=lambda k: -file_size(self.paths[k])))
        self._indexes: dict[Future, int] = {}
        self._finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._pool = ProcessPoolExecutor(processes, mp_context=process_context(), initializer=prepare_worker)
        # The first submission forks every worker: from this thread, before the feeding thread exists.
        self._submit_next()
        threading.Thread(target=self._feed, name="featurize-feeder", daemon=True).start()

    def _submit_next(self) -> bool:
        """Wait for a free slot, then hand the next file to the pool; False when there is nothing left."""
        self._free_slots.acquire()
        geometry, cache_dir, _ = self._arguments
        with self._lock:
            if self._pool is None or not self._pending:
                return False
            index = self._pending.popleft()
            try:
                future = self._pool.submit(featurize_one, self.paths[index], geometry, cache_dir, self._worker_helpers)
            except Exception as error:  # noqa: BLE001 - a broken pool fails this complex like the running ones
                future = Future()
                future.set_exception(error)
            self._indexes[future] = index
        future.add_done_callback(self._on_done)
        return True

    def _feed(self) -> None:
        while self._submit_next():
            pass

    def _on_done(self, future: Future) -> None:
        self._free_slots.release()
        self._finished.put(future)

    def results(self, progress: bool = True) -> list[FeaturizeResult]:
        """Wait for every file; results in input order. Never raises for bad input."""
        results: list[FeaturizeResult | None] = [None] * len(self.paths)
        with tqdm(total=len(self.paths), desc="featurising", unit="complex", disable=not progress) as bar:
            if self._pool is None:
                geometry, cache_dir, workers = self._arguments
                for index, path in enumerate(self.paths):
                    results[index] = featurize_one(path, geometry, cache_dir, workers)
                    bar.update()
                return [result for result in results if result is not None]
            for _ in range(self._extra_slots):  # the caller waits from now on: its CPU goes to the workers
                self._free_slots.release()
            self._extra_slots = 0
            orphans = []  # complexes lost with a worker that died: maybe their own fault, maybe another's
            try:
                for _ in self.paths:
                    future = self._finished.get()
                    index = self._indexes[future]
                    try:
                        results[index] = future.result()
                    except BrokenProcessPool:
                        orphans.append(index)
                        continue
                    except Exception as error:  # noqa: BLE001 - a failing worker is one complex's problem
                        path = self.paths[index]
                        reason = f"internal error: {type(error).__name__}: {first_line(error)}"
                        results[index] = FeaturizeResult(path, complex_name(path), None, reason)
                    bar.update()
            finally:
                self.close(wait=True)  # every worker is idle by now: they exit at once
            geometry, cache_dir, _ = self._arguments
            for index in orphans:
                results[index] = featurize_in_own_process(self.paths[index], geometry, cache_dir)
                bar.update()
        return [result for result in results if result is not None]

    def close(self, wait: bool = False) -> None:
        """Drop the work not started yet and let the workers go (running complexes finish first)."""
        if self._pool is None:
            return
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        self._free_slots.release()  # a feeder waiting for a slot wakes up, finds nothing left and ends
        pool.shutdown(wait=wait, cancel_futures=True)


def featurize_in_own_process(path: Path, geometry: str, cache_dir: str | os.PathLike | None) -> FeaturizeResult:
    """One complex in a process of its own: if that process dies (out of memory, a crash in native code),
    only this complex fails, with a reason."""
    with ProcessPoolExecutor(1, mp_context=process_context(), initializer=prepare_worker) as pool:
        try:
            return pool.submit(featurize_one, path, geometry, cache_dir, 1).result()
        except BrokenProcessPool:
            reason = "the featurisation process died (out of memory, or a crash in GUDHI or mkdssp)"
            return FeaturizeResult(path, complex_name(path), None, reason)


def featurize_many(
    paths: list[str | os.PathLike], *, geometry: str = GEOMETRY_XYY, jobs: int = 1,
    cache_dir: str | os.PathLike | None = None, progress: bool = True, workers: int | None = None,
) -> list[FeaturizeResult]:
    """Featurise many files, results in input order. Never raises for bad input.

    `jobs` > 1 uses a process pool over complexes. With one job, each complex's alpha complexes are spread over
    `workers` processes (default: the CPUs available but one, left to mkdssp).
    """
    return FeaturizeJobs(paths, geometry=geometry, jobs=jobs, cache_dir=cache_dir, workers=workers).results(progress)


def process_context():
    """fork where available (fast start, no re-import), spawn elsewhere."""
    return get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def find_complexes(folder: str | os.PathLike) -> list[Path]:
    """PDB files (.pdb, .ent, optionally gzipped) directly inside `folder`, sorted by name."""
    folder = Path(folder)
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(PDB_SUFFIXES)), key=lambda p: p.name
    )
