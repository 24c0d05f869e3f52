"""report.html: self-contained (pictures embedded), naming every target, with the top of each ranking and, with
labels, the numbers of evaluation.csv; infer.py --report writes it beside the CSV files."""

from __future__ import annotations

import base64
import math
import random
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from model.plots import png_size, png_text
from model.report import ALL_MODELS, HISTOGRAM_SIZE, SCATTER_SIZE, TOP_MODELS, write_report
from tests.conftest import needs_mkdssp
from tests.test_infer import EXAMPLE_NAMES, EXAMPLES, read_rows, run_infer

XHTML = "{http://www.w3.org/1999/xhtml}"
DATA_PNG = "data:image/png;base64,"


def parse(path: Path) -> ET.Element:
    """The report as XML (it is well-formed XHTML), after checking that it needs nothing from outside."""
    root = ET.fromstring(path.read_bytes())
    for element in root.iter():
        for name, value in element.attrib.items():
            assert name not in ("href", "srcset", "action"), (element.tag, name, value)
            if name == "src":
                assert value.startswith(DATA_PNG), value[:80]
    assert not [e for e in root.iter() if e.tag in (f"{XHTML}script", f"{XHTML}link", f"{XHTML}iframe")]
    assert "url(" not in path.read_text() and "@import" not in path.read_text()
    return root


def images(root: ET.Element) -> list[tuple[tuple[int, int], str]]:
    """(pixel size, Description) of every embedded picture, in document order; each must be a valid PNG."""
    found = []
    for element in root.iter(f"{XHTML}img"):
        data = base64.b64decode(element.attrib["src"][len(DATA_PNG) :], validate=True)
        found.append((png_size(data), png_text(data)["Description"]))
        assert element.attrib["alt"] == found[-1][1]  # the picture's own words, also for readers without it
    return found


def sections(root: ET.Element) -> dict[str, ET.Element]:
    return {section.attrib["data-target"]: section for section in root.iter(f"{XHTML}section")}


def ranking_models(section: ET.Element) -> list[str]:
    table = section.find(f"{XHTML}table[@class='ranking']")
    return [row.attrib["data-model"] for row in table.iter(f"{XHTML}tr") if "data-model" in row.attrib]


def target_values(root: ET.Element) -> dict[str, list[str]]:
    """Per target, the data-value of each cell of the targets table (MODELS ... TOP5_HIT)."""
    table = next(t for t in root.iter(f"{XHTML}table") if t.attrib.get("class") == "targets")
    rows = [row for row in table.iter(f"{XHTML}tr") if "data-target" in row.attrib]
    return {row.attrib["data-target"]: cell_values(row) for row in rows}


def cell_values(row: ET.Element) -> list[str]:
    """A table row's numbers in full (each number cell's data-value)."""
    return [cell.attrib["data-value"] for cell in row.iter(f"{XHTML}td") if "data-value" in cell.attrib]


def expected_top(models: list[str], predicted: list[float], count: int) -> list[str]:
    return [name for _, name in sorted((-value, name) for value, name in zip(predicted, models, strict=True))][:count]


@pytest.fixture(scope="module")
def labelled_set() -> tuple[list[str], list[float], dict[str, tuple[float, str]]]:
    """Three targets of 25 models (one target's name needs escaping and is not ASCII), plus one model without a
    label."""
    generator = random.Random(7)
    names, predicted, labels = [], [], {}
    for target in ("T1", "T2", "cible_é<b>&'c\""):
        for k in range(25):
            true = generator.random() ** 2
            name = f"{target}_m{k:02d}"
            names.append(name)
            predicted.append(min(1.0, max(0.0, 0.7 * true + generator.gauss(0.1, 0.1))))
            labels[name] = (true, target)
    names.append("unlabelled")
    predicted.append(0.99)
    return names, predicted, labels


def test_report_with_labels(tmp_path, labelled_set):
    names, predicted, labels = labelled_set
    path = tmp_path / "report.html"
    write_report(path, names, predicted, labels, [("junk.txt", "not a PDB file")])
    root = parse(path)
    assert path.read_bytes().isascii()  # other characters as references: the same text in any locale
    targets = sorted({target for _, target in labels.values()})
    assert sorted(sections(root)) == targets
    for target, section in sections(root).items():
        assert section.find(f"{XHTML}h2").text == target
    # The histogram of all models, then one scatter per target in the order of the sections.
    pictures = images(root)
    assert [size for size, _ in pictures] == [HISTOGRAM_SIZE] + [SCATTER_SIZE] * len(targets)
    assert pictures[0][1].startswith(f"histogram of predicted DockQ: {len(names)} models, "
                                     f"median {np.median(predicted):.4f}")
    values = target_values(root)
    for (_, description), (target, section) in zip(pictures[1:], sections(root).items(), strict=True):
        models = [name for name in names if name in labels and labels[name][1] == target]
        pred = [predicted[names.index(name)] for name in models]
        true = [labels[name][0] for name in models]
        top = expected_top(models, pred, len(models))
        assert ranking_models(section) == top[:TOP_MODELS]
        # Oracles: scipy directly, and the top-1 loss by its definition.
        pearson, spearman = stats.pearsonr(pred, true)[0], stats.spearmanr(pred, true)[0]
        top1_loss = max(true) - labels[top[0]][0]
        models_cell, pearson_cell, spearman_cell, _, loss_cell, *_ = values[target]
        assert int(models_cell) == 25
        assert float(pearson_cell) == pytest.approx(pearson, abs=1e-12)
        assert float(spearman_cell) == pytest.approx(spearman, abs=1e-12)
        assert float(loss_cell) == pytest.approx(top1_loss, abs=1e-12)
        assert description.startswith(f"target {target}: 25 models, Pearson {pearson:.4f}, Spearman {spearman:.4f}, "
                                      f"top-1 {top[0]}, ")
        assert description.endswith(f"top-1 loss {top1_loss:.4f}")
    text = path.read_text()
    assert "1 scored model(s) have no label" in text and "junk.txt" in text and "not a PDB file" in text


def test_report_without_labels_ranks_all_models(tmp_path, labelled_set):
    names, predicted, _ = labelled_set
    path = tmp_path / "report.html"
    write_report(path, names, predicted, top=5)
    root = parse(path)
    assert list(sections(root)) == [ALL_MODELS]
    assert ranking_models(sections(root)[ALL_MODELS]) == expected_top(names, predicted, 5)
    assert [size for size, _ in images(root)] == [HISTOGRAM_SIZE]
    with pytest.raises(FileExistsError):
        write_report(path, names, predicted)  # never over an existing file unless asked
    write_report(path, names[:3], predicted[:3], overwrite=True)
    assert "3 model(s) scored" in path.read_text()


def test_undefined_numbers_read_n_a(tmp_path):
    """A target of one model has no correlation: "n/a" to read, "nan" (as in evaluation.csv) in data-value."""
    path = tmp_path / "report.html"
    write_report(path, ["a", "b", "c"], [0.3, 0.5, 0.4], {"a": (0.2, "single"), "b": (0.6, "pair"), "c": (0.1, "pair")})
    root = parse(path)
    assert target_values(root)["single"] == ["1", "nan", "nan", repr((0.3 - 0.2) ** 2), "0.0", "0", "0"]
    # Targets in name order: pair, then single.
    assert images(root)[2][1].startswith("target single: 1 models, Pearson n/a, Spearman n/a, top-1 a, best a")
    summary = sections(root)["single"].find(f"{XHTML}p").text
    assert summary == "1 model(s); Pearson n/a, Spearman n/a, top-1 loss 0.0000."
    write_report(tmp_path / "unlabelled.html", ["x"], [0.5], {"a": (0.2, "single")})
    assert "None of the scored models has a label." in (tmp_path / "unlabelled.html").read_text()


@needs_mkdssp
def test_infer_report_agrees_with_the_csv_files(tmp_path, trained_checkpoint):
    """infer.py --report --labels on the examples and copies of them: the report's numbers are evaluation.csv's
    and result.csv's, its rankings ranking.csv's, and an existing report.html is never replaced."""
    folder = tmp_path / "complexes"
    folder.mkdir()
    for path in EXAMPLES.iterdir():
        if path.name != "README.md":
            shutil.copy(path, folder / path.name)
            shutil.copy(path, folder / f"copy_{path.name}")
    (folder / "notes.txt").write_text("not a structure\n")
    labels = tmp_path / "labels.csv"
    dockq = {"1BD2": 0.7, "1HVR": 0.2, "4E43": 0.45, "copy_1BD2": 0.1, "copy_1HVR": 0.6}  # copy_4E43: no label
    labels.write_text("MODEL,DockQ,target\n" + "".join(
        f"{name},{value},{'copies' if name.startswith('copy') else 'originals'}\n" for name, value in dockq.items()
    ))
    out = tmp_path / "out"
    arguments = ["-c", str(folder), "-r", str(out), "--checkpoint", str(trained_checkpoint), "--labels", str(labels),
                 "--report", "--no_cache", "--jobs", "2"]
    completed = run_infer(*arguments)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in completed.stdout
    root = parse(out / "report.html")
    assert sorted(sections(root)) == ["copies", "originals"]
    evaluation = {row["TARGET"]: row for row in read_rows(out / "evaluation.csv")}
    for target, cells in target_values(root).items():
        row = evaluation[target]
        assert cells == [row[column] for column in
                         ("MODELS", "PEARSON", "SPEARMAN", "MSE", "TOP1_LOSS", "TOP1_HIT", "TOP5_HIT")]
    assert not math.isnan(float(evaluation["originals"]["PEARSON"]))
    ranking = [row["MODEL"] for row in read_rows(out / "ranking.csv")]
    predictions = {row["MODEL"]: row["PRED_DOCKQ"] for row in read_rows(out / "result.csv")}
    assert sorted(predictions) == sorted([*EXAMPLE_NAMES, *(f"copy_{name}" for name in EXAMPLE_NAMES)])
    for target, section in sections(root).items():
        models = [name for name in dockq if (target == "copies") == name.startswith("copy")]
        assert ranking_models(section) == [name for name in ranking if name in models]
        for row in section.iter(f"{XHTML}tr"):
            if "data-model" in row.attrib:
                assert cell_values(row) == [predictions[row.attrib["data-model"]], str(dockq[row.attrib["data-model"]])]
    assert len(images(root)) == 3
    assert "notes.txt" in (out / "report.html").read_text()

    # Asked again without --overwrite: refused before any work, the report untouched.
    (out / "report.html").write_text("mine")
    for name in ("result.csv", "ranking.csv", "skipped.csv", "evaluation.csv"):
        (out / name).unlink()
    refused = run_infer(*arguments)
    assert refused.returncode == 2 and "report.html already exists" in refused.stderr
    assert (out / "report.html").read_text() == "mine"

