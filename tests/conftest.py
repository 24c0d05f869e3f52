"""Shared fixtures: where the reference oracles live, and whether they are required."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from data.dssp import mkdssp_available
from model.checkpoint_paths import reference_root

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_sigint() -> None:
    """`preexec_fn` of a child that a test interrupts: SIGINT as from a terminal, whatever the test process
    inherited (`cmd &` in a script starts it ignoring SIGINT, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def reference_required() -> bool:
    """In CI (`TOPOQA_REQUIRE_REFERENCE=1`) a missing oracle is a failure, not a skip."""
    return os.environ.get("TOPOQA_REQUIRE_REFERENCE", "") not in ("", "0")


def need_reference(*parts: str) -> Path:
    """Return a path inside the reference folder, or skip/fail when it is absent."""
    path = reference_root().joinpath(*parts)
    if not path.exists():
        message = f"reference oracle missing: {path} (set TOPOQA_REFERENCE)"
        if reference_required():
            pytest.fail(message)
        pytest.skip(message)
    return path


def docking_model(pdb_lines: list[str]) -> list[str]:
    """A crystal structure (lines of a PDB file) as a docking tool writes a model: protein heavy atoms only
    (ligands, waters and modified residues, all HETATM, and hydrogens, which docking models rarely have, are
    left out), a segment id per chain, TER after each chain, one MODEL/ENDMDL pair and no header. Tests of
    input handling add such records back one kind at a time."""
    lines = ["MODEL        1"]
    atoms = [line for line in pdb_lines if line.startswith("ATOM") and line[76:78].strip() != "H"]
    for k, line in enumerate(atoms):
        lines.append(f"{line[:72]}{line[21]:<4}{line[76:]}")
        if k + 1 == len(atoms) or atoms[k + 1][21] != line[21]:
            lines.append(f"TER   {int(line[6:11]) + 1:5d}      {line[17:26]}")
    return [*lines, "ENDMDL"]


@pytest.fixture(scope="session")
def mkdssp() -> None:
    """mkdssp on PATH, or a skip (a failure in CI, which installs it). Session-scoped, so that it runs before
    the module fixtures that featurise."""
    if not mkdssp_available():
        message = "mkdssp not installed (scripts/setup.sh installs it)"
        if reference_required():
            pytest.fail(message)
        pytest.skip(message)


# For tests that run mkdssp: `@needs_mkdssp`, or `pytestmark = needs_mkdssp` for a whole module.
needs_mkdssp = pytest.mark.usefixtures("mkdssp")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return need_reference()


@pytest.fixture(scope="session")
def published_checkpoint() -> Path:
    return need_reference("topoqa.ckpt.original")


@pytest.fixture(scope="session")
def golden_dirs() -> list[Path]:
    folders = sorted(p for p in need_reference("golden").iterdir() if p.is_dir())
    if not folders:
        pytest.fail("reference golden folder is empty")
    return folders


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> Path:
    """A short train.py run on a generated graph set (training/synthetic_graphs.py): `set/` holds the graphs
    and labels, `run/` the run's files. Its checkpoints are real Lightning files (weights, Adam state, best-k)
    made without the reference, for the tests of infer.py, convert.py and resume that do not need the
    published weights."""
    from training.synthetic_graphs import write_synthetic_set

    folder = tmp_path_factory.mktemp("generated_run")
    config = write_synthetic_set(folder / "set", count=24, seed=3, min_nodes=20, max_nodes=60, num_epochs=2)
    environment = {**os.environ, "TQDM_DISABLE": "1"}
    finished = subprocess.run(
        [sys.executable, "train.py", "--config", str(config), "--save_dir", str(folder / "run")],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-3000:]
    return folder


@pytest.fixture(scope="session")
def generated_graphs(generated_run) -> Path:
    """The generated run's graph folder (<MODEL>.pt files with labels)."""
    return generated_run / "set" / "graphs"


@pytest.fixture(scope="session")
def trained_checkpoint(generated_run) -> Path:
    """topo_last.ckpt of the generated run: a Lightning checkpoint that needs no reference."""
    return generated_run / "run" / "topo_last.ckpt"


@pytest.fixture(params=["generated", "published"])
def lightning_file(request) -> Path:
    """A Lightning checkpoint: train.py's from the generated run (always there), then the published one (skips
    without the reference), for tests whose assertions hold for any checkpoint."""
    if request.param == "published":
        return request.getfixturevalue("published_checkpoint")
    return request.getfixturevalue("trained_checkpoint")


def single_chain_copy(source: Path, target: Path) -> None:
    """Keep only the first chain's atoms: a real structure with nothing to score."""
    lines = source.read_text().splitlines(keepends=True)
    atoms = [line for line in lines if line.startswith(("ATOM  ", "HETATM"))]
    first_chain = atoms[0][21]
    target.write_text("".join(line for line in atoms if line[21] == first_chain) + "END\n")
