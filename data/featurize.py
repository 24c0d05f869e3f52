"""Complex (PDB or mmCIF file) -> TopoQA graph (SPEC 1.1-1.4), one complex or many (`featurize.py` is the command).

The featurisation itself is torch-free (NumPy arrays in and out, see `GraphArrays`), so that worker processes
never import torch; the network reads the arrays directly, `.graph` wraps them into the PyG `Data` of graph files.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import cached_property
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from Bio.PDB.kdtrees import KDTree
from tqdm.auto import tqdm

from data.dssp import DsspRun, residues_within_reach
from data.edges import GEOMETRIES, GEOMETRY_XYY, decimal_ca_coordinates, edge_features
from data.faults import fault_point
from data.graph_arrays import GRAPH_FORMAT_VERSION, GraphArrays
from data.graph_cache import GraphCache, cache_key, featurisation_fingerprint
from data.inputs import STRUCTURE_SUFFIXES, complex_name, find_complexes
from data.interface import interface_ids, interface_residues
from data.node_features import node_table
from data.structure import UnscorableComplex, first_line, read_structure, require_protein_chains
from data.topology import NEIGHBOURHOOD_RADIUS, alpha_precision, topology_table
from data.workers import WorkerScratch, prepare_worker

if TYPE_CHECKING:
    from torch_geometric.data import Data

__all__ = [
    "FeatureStages", "FeaturizeJobs", "FeaturizeResult", "GraphArrays", "UnscorableComplex", "complex_name",
    "featurize_arrays", "featurize_complex", "featurize_many", "featurize_one", "featurize_stages", "find_complexes",
]

PDB_SUFFIXES = STRUCTURE_SUFFIXES  # the name older callers import
ALONE_ATTEMPTS = 2  # processes a lost complex may take down by itself before it is skipped (featurize_alone)
POOL_CHECK_SECONDS = 1.0


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


def featurize_stages(path: str | os.PathLike, geometry: str = GEOMETRY_XYY, name: str | None = None) -> FeatureStages:
    """Featurise one complex and keep every stage. Raises UnscorableComplex for input that cannot be scored.
    `name`: the complex's name (default: the file name without its extension, see `complex_name`).

    The topology is computed in this process while mkdssp runs beside it.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    name = name if name is not None else complex_name(path)
    structure = read_structure(path)
    require_protein_chains(structure)
    interface = interface_residues(structure)
    # mkdssp runs in the background from here on, while we compute the topology. Only the interface residues'
    # accessibility is read: residues out of reach of them go to mkdssp as backbone only (~25% faster on 27,000 atoms).
    dssp = DsspRun(structure, residues_within_reach(structure, interface))
    try:
        fault_point("after-dssp-start", name)
        ids = interface_ids(structure, interface)
        ca = structure.atom_xyz[structure.residue_ca[interface]]
        near = topology_atoms(structure.atom_xyz, ca)
        topology = topology_table(structure.atom_xyz[near], structure.atom_name_initial[near], ca)
        fault_point("after-topology", name)
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
    arrays = GraphArrays(
        name=name, x=features.astype(np.float32), edge_index=edge_index, edge_attr=edge_attr.astype(np.float32),
        geometry=geometry, feature_version=GRAPH_FORMAT_VERSION,
    )
    return FeatureStages(
        name=name, interface_ids=ids, interface_ca=ca, topology=topology,
        node_ids=[ids[k] for k in kept], node_features=features, arrays=arrays,
    )


def topology_atoms(atom_xyz: np.ndarray, centres: np.ndarray) -> np.ndarray | slice:
    """The atoms the topology sees: with the default 'fast' alpha precision, those within reach of an interface
    CA (8 A, and a margin), in file order; with 'safe' or 'exact', every atom, as the reference searched them.

    The neighbour search's order (a KD-tree's) shapes the last bits of the alpha radii. Built over the atoms
    near the interface only, it cannot depend on anything farther away, so that far chains, ions or waters
    (or their absence) leave every bit of the graph as it is. The 'safe' mode reproduces the reference's
    numbers bit for bit, far atoms' influence on those last bits included.
    """
    if alpha_precision() != "fast" or len(centres) == 0:
        return slice(None)
    tree = KDTree(np.ascontiguousarray(atom_xyz, dtype=np.float64), 10)
    reach = NEIGHBOURHOOD_RADIUS + 0.5
    found = [np.fromiter((point.index for point in tree.search(centre, reach)), dtype=np.int64)
             for centre in np.asarray(centres, dtype=np.float64)]
    return np.unique(np.concatenate(found))


def featurize_arrays(path: str | os.PathLike, geometry: str = GEOMETRY_XYY, name: str | None = None) -> GraphArrays:
    """One complex -> graph arrays (x float32 [N,172], edge_index int64 [2,E], edge_attr float32 [E,11])."""
    return featurize_stages(path, geometry, name).arrays


def featurize_complex(path: str | os.PathLike, geometry: str = GEOMETRY_XYY) -> Data:
    """One complex (PDB or mmCIF) -> PyG graph (x [N,172], edge_index [2,E], edge_attr [E,11], name, geometry,
    version)."""
    return featurize_arrays(path, geometry).to_data()


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
    name: str | None = None,
) -> FeaturizeResult:
    """Featurise one file, never raising for bad input: failures become `reason`. Uses the cache when given."""
    path = Path(path)
    name = name if name is not None else complex_name(path)
    fault_point("complex-start", name)
    started = time.perf_counter()
    cache = GraphCache(cache_dir) if cache_dir is not None else None
    key = None
    try:
        if cache is not None:
            key = cache_key(path, geometry)
            hit = cache.get(key, name)
            if hit is not None:
                return FeaturizeResult(path, name, *hit, True, time.perf_counter() - started)
        arrays = featurize_arrays(path, geometry, name)
        if cache is not None:
            store_quietly(cache.put_graph, key, arrays)
        return FeaturizeResult(path, name, arrays, None, False, time.perf_counter() - started)
    except UnscorableComplex as error:
        if cache is not None and key is not None and error.lasting:
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
    """Featurisation of many files. With `jobs` > 1 (or `background`), a pool of worker processes starts on it at
    once, so the caller can do other work (import torch, load a checkpoint) before collecting `results()`.

    One level of parallelism: each complex is featurised in one worker process (mkdssp runs beside it). Workers
    are forked (where available) and never import torch; when the caller had imported it already, they keep
    away from its OpenMP threads. Files go out largest first, so that the long complexes start early and the
    short ones fill in at the end; results come back in input order.

    A worker that dies (killed for memory, a crash in native code) costs only time: the pool it broke is
    replaced for the complexes not started yet, and the complexes that were running in it are featurised again
    at the end, one at a time, each in a process of its own (`featurize_alone`, which has the retry rule).

    A `background` caller keeps a CPU busy itself until it asks for the results, so until then one complex fewer
    runs at a time (sharing the CPUs one process more costs CPU time and delays the caller; bench/RESULTS.md).
    """

    def __init__(
        self, paths: list[str | os.PathLike], *, geometry: str = GEOMETRY_XYY, jobs: int = 1,
        cache_dir: str | os.PathLike | None = None, background: bool = False, names: list[str] | None = None,
    ):
        """`names`: one per path (e.g. `data.inputs.complex_inputs`'s relative-path names); default: file names."""
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
        self.paths = [Path(p) for p in paths]
        self.names = list(names) if names is not None else [complex_name(p) for p in self.paths]
        if len(self.names) != len(self.paths):
            raise ValueError(f"{len(self.names)} names for {len(self.paths)} paths")
        self._geometry, self._cache_dir = geometry, cache_dir
        self._pool: ProcessPoolExecutor | None = None
        self._processes = min(jobs, len(self.paths))
        if not self.paths or (self._processes <= 1 and not background):
            return
        self._processes = max(1, self._processes)
        if cache_dir is not None:
            featurisation_fingerprint()  # computed once here, inherited by forked workers
        self._scratch = WorkerScratch()
        slots = self._processes - 1 if background and self._processes > 1 else self._processes
        self._extra_slots = self._processes - slots
        self._free_slots = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._pending = deque(sorted(range(len(self.paths)), key=lambda k: -file_size(self.paths[k])))
        self._indexes: dict[Future, int] = {}  # submitted to the current pool, not collected yet
        self._finished: queue.SimpleQueue[Future | None] = queue.SimpleQueue()
        self._generation = 0
        self._pool_broken = False
        self._start_pool()

    def _start_pool(self) -> None:
        """A new pool, and a thread that feeds it. Its first submission forks every worker: from this thread,
        before the feeding thread exists."""
        with self._lock:
            self._generation += 1
            self._pool_broken = False
            self._pool = ProcessPoolExecutor(self._processes, mp_context=process_context(),
                                             initializer=prepare_worker, initargs=(self._scratch.path,))
        if self._submit_next(self._generation):
            threading.Thread(target=self._feed, args=(self._generation,), name="featurize-feeder", daemon=True).start()

    def _submit_next(self, generation: int) -> bool:
        """Wait for a free slot, then hand the next file to the pool; False when there is nothing left to hand
        to this generation's pool (none pending, the jobs closed, or the pool broken or replaced)."""
        self._free_slots.acquire()
        with self._lock:
            if generation != self._generation or self._pool is None or self._pool_broken or not self._pending:
                self._free_slots.release()
                return False
            index = self._pending.popleft()
            try:
                future = self._pool.submit(featurize_in_worker, self.paths[index], self._geometry, self._cache_dir,
                                           self.names[index])
            except (BrokenProcessPool, RuntimeError):  # a worker died: the file waits for the next pool
                self._pending.appendleft(index)
                self._pool_broken = True
                self._free_slots.release()
                self._finished.put(None)  # wakes results(), which starts the next pool
                return False
            self._indexes[future] = index
        future.add_done_callback(self._on_done)
        return True

    def _feed(self, generation: int) -> None:
        while self._submit_next(generation):
            pass

    def _on_done(self, future: Future) -> None:
        self._free_slots.release()
        self._finished.put(future)

    def results(self, progress: bool = True) -> list[FeaturizeResult]:
        """Wait for every file; results in input order. Never raises for bad input."""
        results: list[FeaturizeResult | None] = [None] * len(self.paths)
        for index, result in self._completed(progress):
            results[index] = result
        return [result for result in results if result is not None]

    def completed(self, progress: bool = False) -> Iterator[FeaturizeResult]:
        """Each file's result as soon as it is ready (in no particular order), so that a caller can use it and
        drop it: memory then does not grow with the number of files. Never raises for bad input."""
        for _, result in self._completed(progress):
            yield result

    def _completed(self, progress: bool) -> Iterator[tuple[int, FeaturizeResult]]:
        """(input index, result) of every file, as they finish."""
        with tqdm(total=len(self.paths), desc="featurising", unit="complex", disable=not progress) as bar:
            if self._pool is None:
                for index, path in enumerate(self.paths):
                    result = featurize_one(path, self._geometry, self._cache_dir, self.names[index])
                    bar.update()
                    yield index, result
                return
            for _ in range(self._extra_slots):  # the caller waits from now on: its CPU goes to the workers
                self._free_slots.release()
            self._extra_slots = 0
            lost: list[int] = []  # complexes lost with a worker that died: maybe their own fault, maybe another's
            try:
                while True:
                    with self._lock:
                        if not self._indexes and (not self._pending or self._pool is None):
                            break
                        broken = self._pool_broken or pool_is_broken(self._pool)
                    if broken:
                        yield from self._replace_broken_pool(lost, bar)
                        continue
                    try:
                        # A second's timeout, not to wait on a lock, but because Python 3.11's pool can lose a
                        # future submitted just as it breaks (its manager thread does not take the submission
                        # lock): never done, it would keep this loop waiting, were the pool not looked at.
                        future = self._finished.get(timeout=POOL_CHECK_SECONDS)
                    except queue.Empty:
                        continue
                    if future is not None:
                        yield from self._collect(future, lost, bar)
            finally:
                self.close(wait=True)  # every worker is idle by now: they exit at once
            for index in lost:
                result = featurize_alone(self.paths[index], self._geometry, self._cache_dir, self._scratch.path,
                                         self.names[index])
                bar.update()
                yield index, result
            self._scratch.remove()

    def _collect(self, future: Future, lost: list[int], bar) -> Iterator[tuple[int, FeaturizeResult]]:
        """A finished future's (index, result), or nothing, its complex counted as lost, when the pool broke
        under it."""
        with self._lock:
            index = self._indexes.pop(future, None)
        if index is None:
            return  # collected already, when its pool was replaced
        try:
            result = collect_worker_result(future.result())
        except BrokenProcessPool:
            with self._lock:
                self._pool_broken = True
            lost.append(index)
            return
        except Exception as error:  # noqa: BLE001 - a failing worker is one complex's problem
            path = self.paths[index]
            reason = f"internal error: {type(error).__name__}: {first_line(error)}"
            result = FeaturizeResult(path, self.names[index], None, reason)
        bar.update()
        yield index, result

    def _replace_broken_pool(self, lost: list[int], bar) -> Iterator[tuple[int, FeaturizeResult]]:
        """Once a worker died, its pool is useless: collect what it finished, count the rest as lost, and start
        a new pool for the files not handed out yet."""
        with self._lock:
            pool = self._pool
            self._generation += 1  # the old feeding thread stops at its next turn
        # Waits for the pool's manager thread, which has stopped the other workers: after it, no future of this
        # pool changes any more.
        pool.shutdown(wait=True)
        with self._lock:
            outstanding = list(self._indexes)
        for future in outstanding:
            if future.done():
                yield from self._collect(future, lost, bar)
            else:
                with self._lock:
                    lost.append(self._indexes.pop(future))
                self._free_slots.release()
        with self._lock:
            more = bool(self._pending) and self._pool is not None
            if not more:
                self._pool_broken = False
        if more:
            self._start_pool()

    def close(self, wait: bool = False) -> None:
        """Drop the work not started yet and let the workers go (running complexes finish first)."""
        if self._pool is None:
            return
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        self._free_slots.release()  # a feeder waiting for a slot wakes up, finds nothing left and ends
        pool.shutdown(wait=wait, cancel_futures=True)
        if not wait:
            self._scratch.remove()


def pool_is_broken(pool: ProcessPoolExecutor | None) -> bool:
    """Whether a worker of `pool` died (the executor has no public way to say so)."""
    return bool(getattr(pool, "_broken", False))


def featurize_in_worker(
    path: Path, geometry: str, cache_dir: str | os.PathLike | None, name: str | None = None
) -> tuple[FeaturizeResult, str]:
    """In a pool worker: featurise one file; the graph arrays go back through a file in the run's scratch folder.

    A process pool reads every worker's results from one pipe: a worker killed halfway through sending a large
    result would leave the pool waiting for the rest forever. What goes through the pipe here (a few hundred
    bytes, under the pipe's atomic-write size) is written whole or not at all.
    """
    result = featurize_one(path, geometry, cache_dir, name)
    arrays_file = ""
    if result.arrays is not None:
        descriptor, arrays_file = tempfile.mkstemp(prefix="graph-", suffix=".pickle")
        with os.fdopen(descriptor, "wb") as handle:
            pickle.dump(result.arrays, handle, protocol=pickle.HIGHEST_PROTOCOL)
        result = replace(result, arrays=None)
    fault_point("complex-end", result.name)
    return result, arrays_file


def collect_worker_result(returned: tuple[FeaturizeResult, str]) -> FeaturizeResult:
    """In the parent: a pool worker's result with its arrays read back (and their file removed)."""
    result, arrays_file = returned
    if not arrays_file:
        return result
    with open(arrays_file, "rb") as handle:
        arrays = pickle.load(handle)  # written by our own worker, into this run's private scratch folder
    os.unlink(arrays_file)
    return replace(result, arrays=arrays)


def featurize_alone(
    path: Path, geometry: str, cache_dir: str | os.PathLike | None, scratch: str, name: str | None = None
) -> FeaturizeResult:
    """A complex that was lost with a worker that died, featurised again in a process of its own, nothing else
    featurising meanwhile.

    The retry rule: up to ALONE_ATTEMPTS processes in a row; the complex is skipped ("the featurisation process
    died") only when each of them died, so that one kill from outside (or an out-of-memory kill of a neighbour
    that took this worker too) never costs a complex, while a complex that kills every process it runs in is
    given up after a bounded number of tries. `scratch`: the run's `WorkerScratch` folder.
    """
    deaths = []
    for attempt in range(1, ALONE_ATTEMPTS + 1):
        result, death = run_alone(path, geometry, cache_dir, scratch, attempt, name)
        if result is not None:
            return result
        deaths.append(death)
    reason = (f"the featurisation process died, also each of the {ALONE_ATTEMPTS} times the complex ran alone "
              f"({'; '.join(deaths)}): out of memory, or a crash in GUDHI or mkdssp")
    return FeaturizeResult(path, name if name is not None else complex_name(path), None, reason)


def run_alone(
    path: Path, geometry: str, cache_dir: str | os.PathLike | None, scratch: str, attempt: int,
    name: str | None = None,
) -> tuple[FeaturizeResult | None, str]:
    """(result, "") from a process of its own, or (None, how that process died)."""
    context = process_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=featurize_in_own_process, name=f"featurize-alone-{attempt}",
                              args=(sender, path, geometry, cache_dir, scratch, attempt, name))
    process.start()
    sender.close()  # the child's end only: when the child dies, reading sees the end of the pipe
    try:
        result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
    process.join()
    if result is not None:
        return result, ""
    code = process.exitcode
    how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
    return None, f"pid {process.pid} {how}"


def featurize_in_own_process(
    connection, path: Path, geometry: str, cache_dir: str | os.PathLike | None, scratch: str, attempt: int,
    name: str | None = None,
) -> None:
    """The body of `run_alone`'s process: the result goes back whole through a pipe of its own."""
    prepare_worker(scratch)
    name = name if name is not None else complex_name(path)
    fault_point("alone-start", f"{name} attempt {attempt}")
    result = featurize_one(path, geometry, cache_dir, name)
    fault_point("complex-end", result.name)
    connection.send(result)
    connection.close()


def featurize_many(
    paths: list[str | os.PathLike], *, geometry: str = GEOMETRY_XYY, jobs: int = 1,
    cache_dir: str | os.PathLike | None = None, progress: bool = True, names: list[str] | None = None,
) -> list[FeaturizeResult]:
    """Featurise many files, results in input order. Never raises for bad input.

    `jobs` > 1 uses a process pool over complexes (see `FeaturizeJobs`); one job featurises in this process.
    `names`: one per path (default: file names without their extension).
    """
    return FeaturizeJobs(paths, geometry=geometry, jobs=jobs, cache_dir=cache_dir, names=names).results(progress)


def process_context():
    """fork where available (fast start, no re-import), spawn elsewhere."""
    return get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
