"""The one label-file reader (data.labels), as infer.py, data.featurize and train.py use it."""

from __future__ import annotations

import pytest

from data.labels import LabelFileError, read_labels


def write(tmp_path, text: str, name: str = "labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rows_in_file_order_with_any_capitalisation_and_targets(tmp_path):
    path = write(tmp_path, " model ,DOCKQ,Target\nb,0.5,T2\na,0.125,T1\n")
    labels = read_labels(path, target_column="target")
    assert [(label.model, label.value, label.target) for label in labels] == [("b", 0.5, "T2"), ("a", 0.125, "T1")]


def test_value_column_is_optional_only_when_asked(tmp_path):
    path = write(tmp_path, "MODEL\na\nb\n")
    labels = read_labels(path, value_required=False)
    assert [(label.model, label.value) for label in labels] == [("a", None), ("b", None)]
    with pytest.raises(LabelFileError, match="no dockq column"):
        read_labels(path)


def test_every_problem_is_listed_with_file_and_line(tmp_path):
    path = write(tmp_path, "MODEL,DockQ\na,0.1\n,0.2\nb,x\na,0.3\nc,\n")
    with pytest.raises(LabelFileError) as error:
        read_labels(path)
    assert error.value.problems == [
        f"{path}:3: empty MODEL name",
        f"{path}:4: b: DockQ 'x' is not a number",
        f"{path}:5: a is listed more than once",
        f"{path}:6: c: no DockQ value",
    ]
    assert str(error.value).startswith("4 problem(s) in the labels:")


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "label file not found"), ("DockQ\n0.1\n", "no MODEL column (columns: DockQ)"), ("MODEL,DockQ\n", "no rows"),
     (b"MODEL\n\xff\xfe\n", "cannot read the label file")],
)
def test_unusable_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(LabelFileError) as error:
        read_labels(path)
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(str(path)) and message in error.value.problems[0]
