"""Safe file writing (data.files): the one CSV writer every command uses."""

from __future__ import annotations

import csv

import pytest

from data.files import write_csv


def test_rows_as_sequences_or_mappings_read_back_with_the_csv_module(tmp_path):
    path = tmp_path / "out.csv"
    write_csv(path, ["MODEL", "REASON"], [["a", "only one chain (A)"], {"MODEL": "b, c", "REASON": 'say "no"'}])
    with open(path, newline="") as handle:
        assert list(csv.reader(handle)) == [["MODEL", "REASON"], ["a", "only one chain (A)"], ["b, c", 'say "no"']]
    assert path.read_bytes().count(b"\r") == 0


def test_lightning_line_endings_and_missing_mapping_entries(tmp_path):
    path = tmp_path / "metrics.csv"
    write_csv(path, ["epoch", "val_loss"], [{"epoch": 0}], line_terminator="\r\n")
    assert path.read_bytes() == b"epoch,val_loss\r\n0,\r\n"


def test_never_replaces_a_file_unless_asked_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "result.csv"
    path.write_text("the user's\n")
    with pytest.raises(FileExistsError, match="already exists"):
        write_csv(path, ["MODEL"], [["a"]])
    assert path.read_text() == "the user's\n"
    write_csv(path, ["MODEL"], [["a"]], overwrite=True)
    assert path.read_text() == "MODEL\na\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]


def test_a_failing_row_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "result.csv"
    write_csv(path, ["MODEL"], [["a"]])

    def rows():
        yield ["b"]
        raise RuntimeError("interrupted mid-way")

    with pytest.raises(RuntimeError):
        write_csv(path, ["MODEL"], rows(), overwrite=True)
    assert path.read_text() == "MODEL\na\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]
