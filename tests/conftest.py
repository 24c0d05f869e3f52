"""Shared fixtures: where the reference oracles live, and whether they are required."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.dssp import mkdssp_available
from model.checkpoint_paths import reference_root

REPO_ROOT = Path(__file__).resolve().parent.parent


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
