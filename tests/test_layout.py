"""The architecture as the folders show it: data/ (torch-free) below model/ below training/ and scoring/ below the
scripts."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Each package and the packages it may import from (itself included).
ALLOWED = {
    "data": {"data"},
    "model": {"data", "model"},
    "training": {"data", "model", "training"},
    "scoring": {"data", "model", "scoring"},
}
PROJECT = {"data", "model", "training", "scoring", "tests", "train", "infer", "convert", "bench"}


def project_imports(path) -> set[str]:
    """Top-level project packages a module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_downward(package):
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(project_imports(path) - ALLOWED[package])
        for path in sorted((REPO_ROOT / package).glob("*.py"))
    }
    assert {path: imports for path, imports in offenders.items() if imports} == {}


def test_data_never_imports_torch():
    # Featurisation workers are forked from a process that may hold torch's threads; they must never need it.
    modules = sorted(f"data.{path.stem}" for path in (REPO_ROOT / "data").glob("*.py") if path.stem != "__init__")
    loaded = "sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules)"
    script = f"import sys\nimport {', '.join(modules)}\nprint({loaded})"
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"


def test_feature_widths_are_the_featurisers_columns():
    from data.graph_arrays import EDGE_FEATURES, NODE_FEATURES
    from data.node_features import NODE_COLUMNS
    from model.checkpoint import expected_shapes

    assert len(NODE_COLUMNS) == NODE_FEATURES
    shapes = expected_shapes()
    assert any(shape[-1] == NODE_FEATURES for shape in shapes.values())
    assert any(shape[-1] == EDGE_FEATURES for shape in shapes.values())
