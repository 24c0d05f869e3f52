"""The folder command, labels, the content-hash cache and the process pool."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import data.featurize
from data.featurize import featurize_complex, featurize_many
from data.graph_cache import GraphCache, cache_key, default_cache_dir
from featurize import main
from model.graph_io import GRAPH_FORMAT_VERSION, load_graph
from tests.conftest import REPO_ROOT, need_reference, needs_mkdssp

pytestmark = needs_mkdssp

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(autouse=True)
def cache_outside_home(tmp_path, monkeypatch):
    """Whatever a test forgets to pass, the default cache lands in its temporary folder, never in ~/.cache."""
    monkeypatch.setenv("TOPOQA_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def complex_folder(tmp_path):
    """Two bundled complexes (a dimer whose file name has a dot, and a trimer), an unscorable file, and a
    file that is not a structure. Sorted: broken, dimer.v1, trimer."""
    folder = tmp_path / "complexes"
    folder.mkdir()
    shutil.copy(EXAMPLES / "1HVR.pdb", folder / "dimer.v1.pdb")
    shutil.copy(EXAMPLES / "4E43.pdb", folder / "trimer.pdb")
    (folder / "broken.pdb").write_text("REMARK nothing here\n")
    (folder / "notes.txt").write_text("not a structure file: listed in skipped.csv\n")
    return folder


def test_folder_command_writes_graphs_labels_and_skipped_list(tmp_path, complex_folder, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("MODEL,DockQ\ndimer.v1,0.25\ntrimer,0.5\nbroken,0.1\n")
    out = tmp_path / "graphs"
    code = main(["--complex_folder", str(complex_folder), "--out_dir", str(out), "--labels", str(labels),
                 "--no_cache"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["dimer.v1.pt", "skipped.csv", "trimer.pt"]
    graph = load_graph(out / "dimer.v1.pt")
    assert graph.name == "dimer.v1" and graph.geometry == "xyy" and graph.feature_version == GRAPH_FORMAT_VERSION
    assert graph.y.dtype == torch.float32 and graph.y.shape == (1,) and graph.y.item() == np.float32(0.25)
    # The file holds the featuriser's graph of that input unchanged (its values are test_featurize_parity's
    # business; the reference's recorded graph through this command: the test below).
    direct = featurize_complex(complex_folder / "dimer.v1.pdb")
    for field in ("x", "edge_index", "edge_attr"):
        assert torch.equal(getattr(graph, field), getattr(direct, field)), field
    assert load_graph(out / "trimer.pt").y.item() == np.float32(0.5)
    skipped = list(csv.reader((out / "skipped.csv").read_text().splitlines()))
    assert skipped[0] == ["MODEL", "REASON"] and skipped[1][0] == "notes.txt"
    assert skipped[1][1].startswith("not a structure file (expected one of .pdb.gz")
    assert skipped[2:] == [["broken", "not a PDB file: no ATOM/HETATM records"]]
    assert "skipped broken: not a PDB file" in capsys.readouterr().err

    # A second run refuses to clobber, and says so; --overwrite replaces.
    before = (out / "trimer.pt").stat().st_mtime_ns
    assert main(["--complex_folder", str(complex_folder), "--out_dir", str(out), "--no_cache"]) == 0
    assert (out / "trimer.pt").stat().st_mtime_ns == before
    assert "already exists (pass --overwrite" in (out / "skipped.csv").read_text()


def test_folder_command_writes_the_reference_graph_of_a_golden(tmp_path):
    folder = tmp_path / "complexes"
    folder.mkdir()
    shutil.copy(need_reference("golden", "dove_correct", "input.pdb"), folder / "dove.v1.pdb")
    golden = load_file(need_reference("golden", "dove_correct", "graph.safetensors"))
    assert main(["--complex_folder", str(folder), "--out_dir", str(tmp_path / "graphs"), "--no_cache"]) == 0
    graph = load_graph(tmp_path / "graphs" / "dove.v1.pt")
    # Within the parity tolerance: the default double-precision alpha radii differ from the reference's in the
    # last bits (bit for bit needs TOPOQA_ALPHA_PRECISION=safe, tested in test_featurize_parity).
    np.testing.assert_array_equal(graph.edge_index.numpy(), golden["edge_index"])
    np.testing.assert_allclose(graph.x.numpy(), golden["x"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(graph.edge_attr.numpy(), golden["edge_attr"])


def test_missing_label_is_skipped_and_true_geometry_is_recorded(tmp_path, complex_folder):
    labels = tmp_path / "labels.csv"
    labels.write_text("MODEL,dockq\ntrimer,0.5\n")
    out = tmp_path / "graphs"
    assert main(["--complex_folder", str(complex_folder), "--out_dir", str(out), "--labels", str(labels),
                 "--geometry", "xyz", "--no_cache"]) == 0
    assert sorted(p.name for p in out.glob("*.pt")) == ["trimer.pt"]
    assert load_graph(out / "trimer.pt").geometry == "xyz"
    assert "dimer.v1,no label in" in (out / "skipped.csv").read_text()


def test_nothing_scorable_exits_nonzero(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.pdb").write_text("")
    assert main(["--complex_folder", str(folder), "--out_dir", str(tmp_path / "out"), "--no_cache"]) == 1
    assert main(["--complex_folder", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path / "out")]) == 2


def test_cache_hits_for_unchanged_files_and_recomputes_changed_ones(tmp_path, complex_folder, monkeypatch):
    cache = tmp_path / "cache"
    paths = sorted(complex_folder.glob("*.pdb"))
    first = featurize_many(paths, cache_dir=cache, progress=False)
    assert [r.cached for r in first] == [False, False, False]

    calls = []
    real = data.featurize.featurize_arrays
    monkeypatch.setattr(data.featurize, "featurize_arrays", lambda *a, **k: calls.append(a) or real(*a, **k))
    second = featurize_many(paths, cache_dir=cache, progress=False)
    assert calls == [] and [r.cached for r in second] == [True, True, True]
    assert second[0].reason == first[0].reason  # unscorable reasons are cached too
    for a, b in zip(first[1:], second[1:], strict=True):
        assert torch.equal(a.graph.x, b.graph.x) and torch.equal(a.graph.edge_attr, b.graph.edge_attr)

    # Move one interface CA (LEU A 10) by 0.5 A: only that file is recomputed, and its graph changes.
    trimer = complex_folder / "trimer.pdb"
    lines = trimer.read_text().splitlines()
    index = next(k for k, line in enumerate(lines) if line.startswith("ATOM") and line[12:26] == " CA  LEU A  10")
    lines[index] = lines[index][:30] + f"{float(lines[index][30:38]) + 0.5:8.3f}" + lines[index][38:]
    trimer.write_text("\n".join(lines) + "\n")
    third = featurize_many(paths, cache_dir=cache, progress=False)
    assert [r.cached for r in third] == [True, True, False] and len(calls) == 1
    assert not torch.equal(third[2].graph.x, first[2].graph.x)

    # The geometry is part of the key.
    assert cache_key(paths[1], "xyy") != cache_key(paths[1], "xyz")
    # A damaged entry is recomputed, not trusted.
    key = cache_key(paths[1], "xyy")
    (cache / key[:2] / f"{key}.npz").write_bytes(b"garbage")
    assert GraphCache(cache).get(key) is None
    assert featurize_many([paths[1]], cache_dir=cache, progress=False)[0].cached is False


def test_cached_graph_takes_the_name_of_the_file_it_came_from(tmp_path):
    cache = tmp_path / "cache"
    a, b = tmp_path / "a.pdb", tmp_path / "b.pdb"
    shutil.copy(EXAMPLES / "1HVR.pdb", a)
    shutil.copy(a, b)
    results = featurize_many([a, b], cache_dir=cache, progress=False)
    assert [r.cached for r in results] == [False, True]
    assert [r.graph.name for r in results] == ["a", "b"]


def test_default_cache_dir_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOQA_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("TOPOQA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "topoqa" / "graphs"


def test_process_pool_gives_the_same_results_in_input_order(tmp_path, complex_folder):
    paths = sorted(complex_folder.glob("*.pdb"))
    serial = featurize_many(paths, jobs=1, progress=False)
    parallel = featurize_many(paths, jobs=2, progress=False)
    assert [r.name for r in parallel] == [r.name for r in serial] == ["broken", "dimer.v1", "trimer"]
    assert parallel[0].reason == serial[0].reason
    for a, b in zip(serial[1:], parallel[1:], strict=True):
        assert torch.equal(a.graph.x, b.graph.x) and torch.equal(a.graph.edge_index, b.graph.edge_index)
        assert torch.equal(a.graph.edge_attr, b.graph.edge_attr)


def test_unwritable_cache_still_returns_the_graph(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    path = tmp_path / "dimer.pdb"
    shutil.copy(EXAMPLES / "1HVR.pdb", path)
    with pytest.warns(UserWarning, match="cache not written"):
        result = featurize_many([path], cache_dir=blocker, progress=False)[0]
    assert result.graph is not None and result.reason is None


def test_pool_after_torch_has_started_its_threads_does_not_hang(tmp_path):
    # infer.py may run the network before featurising: forked workers must not deadlock in OpenMP. Run in a child
    # process so that a regression fails on the timeout instead of hanging the suite.
    script = (
        "import sys, torch\n"
        "torch.set_num_threads(2)\n"
        "torch.ones(4_000_000).mul_(3).sum()  # starts the OpenMP team\n"
        "from data.featurize import featurize_many\n"
        "results = featurize_many(sys.argv[1:], jobs=2, progress=False)\n"
        "print(sum(r.graph is not None for r in results))\n"
    )
    paths = [str(EXAMPLES / name) for name in ("1HVR.pdb", "4E43.pdb")]
    child = subprocess.Popen([sys.executable, "-c", script, *paths], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
    try:
        out, err = child.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the child and the workers it forked
        child.communicate()
        pytest.fail("featurize_many(jobs=2) hung after torch had started its OpenMP threads")
    assert child.returncode == 0, err[-2000:]
    assert out.strip() == "2"


def test_featurisation_never_imports_torch(tmp_path):
    # Worker processes are forked before the caller imports torch; the featurisation itself must not import it
    # (seconds of CPU per process), nor pandas or scipy's spatial and stats parts (~0.5 s). numba, which the
    # alpha complexes need, imports scipy's core (0.03 s) and nothing more of it.
    script = (
        "import sys\n"
        "from data.featurize import featurize_many\n"
        "result = featurize_many(sys.argv[2:], cache_dir=sys.argv[1], progress=False)[0]\n"
        "assert result.arrays is not None and result.arrays.x.shape[1] == 172, result.reason\n"
        "heavy = {'torch', 'torch_geometric', 'pandas', 'scipy.spatial', 'scipy.stats', 'scipy.sparse'}\n"
        "print(sorted(heavy & {'.'.join(m.split('.')[:2]) if m.startswith('scipy.') else m.split('.')[0]\n"
        "                      for m in sys.modules}))\n"
    )
    path = EXAMPLES / "1HVR.pdb"
    completed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache"), str(path)], capture_output=True,
                               text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"


def test_cache_fingerprint_covers_every_module_featurisation_computes_with():
    # A module added to the featurisation (say, a new DSSP input writer) must change the cache key when edited.
    from data.graph_cache import FEATURISATION_MODULES

    not_shaping_numbers = {"graph_cache", "graph_io", "workers", "files", "faults", "inputs"}  # inputs: names
    folder = Path(data.featurize.__file__).parent
    reached, pending = set(), ["featurize"]
    while pending:
        module = pending.pop()
        reached.add(module)
        for line in (folder / f"{module}.py").read_text().splitlines():
            line = line.strip()  # imports inside functions count too (numba's code is imported on first use)
            if line.startswith("from data.") and " import " in line:
                imported = line.split()[1].removeprefix("data.")
                if imported not in reached | not_shaping_numbers:
                    pending.append(imported)
    assert reached == set(FEATURISATION_MODULES)
