"""Secondary structure, accessibility and backbone angles from `mkdssp`, read as Biopython's DSSP wrapper reads them.

mkdssp always reads a minimal mmCIF copy written from the parsed structure (`data.dssp_mmcif`), never the
user's file or its text: formatting (header records, bare TER lines, blank chain ids, chain counts, residue
numbers past 9999, PDB or mmCIF) cannot change what it computes. Its classic output (integer accessibility,
as the reference read it) is mapped back to the structure's residues. mkdssp runs in the background
(`DsspRun`) while the caller computes the topology. `dssp_input_text` is the PDB copy the reference gave
mkdssp: the tests' and benchmarks' oracle, not used by the featurisation.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from Bio.Data.PDBData import residue_sasa_scales
from Bio.PDB.kdtrees import KDTree

from data.dssp_mmcif import WATERS, dssp_copy
from data.interface import KDTREE_BUCKET_SIZE
from data.structure import ComplexStructure, UnscorableComplex

MKDSSP = os.environ.get("TOPOQA_MKDSSP", "mkdssp")
DSSP_TIMEOUT_SECONDS = 600
HEADER_LINE = "HEADER    TOPOQA INPUT"
CRYST1_LINE = "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1"
RECORDS_AFTER_CRYST1 = ("ORIGX", "SCALE", "MTRIX", "MODEL", "ATOM", "HETATM", "TER")
# DSSP's accessibility of an atom sees the atoms whose water-inflated spheres overlap its own: at most
# 2 * (1.87 A, its largest radius, CA + 1.4 A water) = 6.54 A away. Side chains are kept up to 8 A.
ACCESSIBILITY_REACH = 8.0
# Biopython's default relative-accessibility scale (Sander & Rost 1994).
MAX_ACCESSIBILITY = residue_sasa_scales["Sander"]
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class DsspResidue:
    chain: str
    seq: int
    icode: str
    amino_acid: str
    secondary_structure: str
    accessibility: int
    phi: float
    psi: float


def is_water(line: str) -> bool:
    return line.startswith("HETATM") and line[17:20].strip() in WATERS


def dssp_input_text(pdb_text: str) -> str:
    """The PDB copy the reference's route gave mkdssp: a HEADER first, a CRYST1 line where the format puts it
    (after the other header records, before ORIGX/SCALE/MTRIX and the coordinates: mkdssp rejects a REMARK
    after it), no waters, the rest unchanged (already the first model).

    DSSP never reads waters (its residue lines are the same without them), but mkdssp's PDB conversion can run
    away on them: 14 GB and killed after 87 s for 73 waters in a chain of their own, no end in 120 s for one
    water numbered like a protein residue.
    """
    lines = [line for line in pdb_text.split("\n") if not line.startswith("HEADER") and not is_water(line)]
    if not any(line.startswith("CRYST1") for line in lines):
        after_header = next(
            (k for k, line in enumerate(lines) if line.startswith(RECORDS_AFTER_CRYST1)), len(lines)
        )
        lines.insert(after_header, CRYST1_LINE)
    return "\n".join([HEADER_LINE, *lines])


def residues_within_reach(structure: ComplexStructure, residues: np.ndarray) -> set[tuple[str, int, str]]:
    """(chain, number, insertion code) of `residues` and of every residue with an atom within
    ACCESSIBILITY_REACH of one of theirs: the residues whose side chains can change their accessibility.

    Decided residue by residue from enclosing balls (centre: the mean of its atoms), so a few more are kept.
    """
    starts, stops = structure.residue_atoms[:, 0], structure.residue_atoms[:, 1]
    centres = np.add.reduceat(structure.atom_xyz.astype(np.float64), starts) / (stops - starts)[:, None]
    offsets = structure.atom_xyz - np.repeat(centres, stops - starts, axis=0)
    radii = np.maximum.reduceat(np.sqrt(np.einsum("ij,ij->i", offsets, offsets)), starts)
    if structure.atom_alternates:
        # mkdssp's copy holds every conformer (data.dssp_mmcif): a residue reaches as far as its farthest one.
        atom_residue = np.repeat(np.arange(len(starts)), stops - starts)
        for atom in structure.atom_alternates:
            residue = atom_residue[atom]
            xyz = np.asarray([conformer[1:4] for conformer in structure.atom_alternates[atom]], dtype=np.float64)
            radii[residue] = max(radii[residue], float(np.linalg.norm(xyz - centres[residue], axis=1).max()))
    tree = KDTree(np.ascontiguousarray(centres), KDTREE_BUCKET_SIZE)
    search = ACCESSIBILITY_REACH + radii.max()
    kept = set(residues.tolist())
    for residue in residues:
        near = np.fromiter((point.index for point in tree.search(centres[residue], search + radii[residue])),
                           dtype=np.int64)
        distances = np.linalg.norm(centres[near] - centres[residue], axis=1)
        kept.update(near[distances <= ACCESSIBILITY_REACH + radii[residue] + radii[near]].tolist())
    return {
        (structure.residue_chain[r], int(structure.residue_seq[r]), structure.residue_icode[r]) for r in kept
    }


def parse_dssp_output(text: str) -> list[DsspResidue]:
    """Residue lines of classic DSSP output, with the column rules of Biopython's `_make_dssp_dict`."""
    residues = []
    started = False
    for line in text.split("\n"):
        fields = line.split()
        if len(fields) < 2:
            continue
        if fields[1] == "RESIDUE":
            started = True
            continue
        if not started or line[9] == " ":  # "!" chain-break lines have no residue number
            continue
        shift = 0
        try:
            accessibility = int(line[34:38])
            phi, psi = float(line[103:109]), float(line[109:115])
        except ValueError:
            # Over 9999 residues DSSP widens the number field and shifts the rest of the line (Biopython's rule).
            if line[34] == " ":
                raise
            shift = line[34:].find(" ")
            accessibility = int(line[34 + shift : 38 + shift])
            phi, psi = float(line[103 + shift : 109 + shift]), float(line[109 + shift : 115 + shift])
        structure_code = line[16]
        residues.append(
            DsspResidue(
                chain=line[11], seq=int(line[5:10]), icode=line[10], amino_acid=line[13],
                secondary_structure="-" if structure_code == " " else structure_code,
                accessibility=accessibility, phi=phi, psi=psi,
            )
        )
    return residues


def relative_accessibility(accessibility: int, residue_name: str) -> float | None:
    """Biopython's rASA: accessibility / max ASA (Sander), capped at 1; None ('NA') for unknown residue types."""
    maximum = MAX_ACCESSIBILITY.get(residue_name)
    if maximum is None:
        return None
    return min(accessibility / maximum, 1.0)


def mkdssp_available() -> bool:
    return shutil.which(MKDSSP) is not None


_running: weakref.WeakSet[DsspRun] = weakref.WeakSet()


def stop_running_dssp() -> None:
    """Kill every mkdssp this process started and still runs, and remove its temporary copy (on interrupt)."""
    for run in list(_running):
        run.close()


def dies_with_this_process():
    """A `preexec_fn` that has the kernel kill mkdssp when the process that started it dies, or None.

    A featurisation worker killed outright (out of memory) cannot stop its mkdssp, which would run on alone.
    Only on Linux, and only in a process with no other thread (as a featurisation worker is): a `preexec_fn`
    can deadlock in the forked copy of a threaded process.
    """
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arrange


class DsspRun:
    """mkdssp on a temporary copy, started in the background; `result()` waits and parses."""

    def __init__(self, structure: ComplexStructure, whole_residues: set[tuple[str, int, str]] | None = None):
        """`whole_residues`: see `dssp_copy` (the residues whose accessibility is read, and their surroundings);
        all residues stay whole when None."""
        self._process = None
        self._folder = None
        self._structure = structure
        if not mkdssp_available():
            return  # reported by result(), so that the input's own problems are reported first
        self._folder = tempfile.mkdtemp(prefix="topoqa-dssp-")
        _running.add(self)
        self._output = Path(self._folder) / "output.dssp"
        self._errors = Path(self._folder) / "errors.txt"
        copy = dssp_copy(structure, whole_residues)
        self._residue_index = copy.residue_index
        source = Path(self._folder) / "input.cif"
        source.write_text(copy.text)
        # stderr goes to a file: a chatty mkdssp must never stall on a full pipe while we compute.
        with open(self._errors, "wb") as errors:
            self._process = subprocess.Popen(
                [MKDSSP, "--output-format=dssp", str(source), str(self._output)],
                stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=dies_with_this_process(),
            )

    def result(self) -> list[DsspResidue]:
        if self._process is None:
            raise UnscorableComplex(f"mkdssp failed: '{MKDSSP}' not found on PATH (install DSSP 4.x)", lasting=False)
        try:
            try:
                self._process.wait(timeout=DSSP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                reason = f"mkdssp failed: no result after {DSSP_TIMEOUT_SECONDS} s"
                raise UnscorableComplex(reason, lasting=False) from None
            text = self._output.read_text() if self._output.exists() else ""
            residues = parse_dssp_output(text) if text.strip() else []
            if self._process.returncode == 0 and not residues:
                raise UnscorableComplex("DSSP found no residue it could read (each needs the backbone atoms N, CA, "
                                        "C and O)")
            if self._process.returncode != 0:
                errors = self._errors.read_text(errors="replace") if self._errors.exists() else ""
                message = " ".join(errors.split()) or f"exit status {self._process.returncode}, no residues"
                killed = self._process.returncode < 0  # by a signal: out of memory, say, not the file's fault
                raise UnscorableComplex(f"mkdssp failed: {message[:300]}", lasting=not killed)
            return self._in_structure(residues)
        finally:
            self.close()

    def _in_structure(self, residues: list[DsspResidue]) -> list[DsspResidue]:
        """The output's residues under the structure's own chain, number and insertion code."""
        structure = self._structure
        named = []
        for entry in residues:
            index = self._residue_index.get((entry.chain, entry.seq))
            if index is None:
                continue  # not one of ours: cannot happen with mkdssp 4's classic output, never a crash
            named.append(replace(entry, chain=structure.residue_chain[index], seq=int(structure.residue_seq[index]),
                                 icode=structure.residue_icode[index]))
        return named

    def close(self) -> None:
        """Kill mkdssp if it still runs and remove the temporary copy.

        Without Popen's own wait: this also runs from a worker's signal handler, which may have interrupted
        a `wait()` holding Popen's lock.
        """
        process = self._process
        if process is not None and process.returncode is None:
            try:
                os.kill(process.pid, signal.SIGKILL)
                os.waitpid(process.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # already gone
            process.returncode = -signal.SIGKILL
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        _running.discard(self)
