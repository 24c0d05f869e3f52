"""Label files: a CSV with a MODEL column and a DockQ column (and optionally a target column), read one way.

Column names match in any capitalisation and with surrounding spaces; rows keep the file's order. Every problem
in the file is collected, one line each naming the file and the line, before anything is raised.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

MAX_LISTED_PROBLEMS = 50


class LabelFileError(ValueError):
    """A label file that cannot be used; `problems` lists every offender (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(format_problems(problems))


def format_problems(problems: list[str], what: str = "the labels") -> str:
    shown = problems[:MAX_LISTED_PROBLEMS]
    lines = [f"{len(problems)} problem(s) in {what}:"] + [f"  {line}" for line in shown]
    if len(problems) > len(shown):
        lines.append(f"  ... and {len(problems) - len(shown)} more")
    return "\n".join(lines)


@dataclass(frozen=True)
class Label:
    model: str
    value: float | None  # None where the value column is optional and the row has none
    target: str | None = None


def read_labels(
    path: str | os.PathLike, value_column: str = "dockq", *, value_required: bool = True,
    target_column: str | None = None,
) -> list[Label]:
    """The rows of a label file, in file order. Raises LabelFileError listing every problem: no such file, no
    MODEL column, no value column (when required), an empty name, a value that is not a number (or missing when
    required), a model listed twice, no rows."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name for name in reader.fieldnames or [] if name is not None]
            raw_rows = list(reader)
    except FileNotFoundError:
        raise LabelFileError([f"{path}: label file not found"]) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelFileError([f"{path}: cannot read the label file ({error})"]) from None
    columns = {name.strip().lower(): name for name in header}
    missing = [name for name, needed in (("MODEL", True), (value_column, value_required))
               if needed and name.lower() not in columns]
    if missing:
        raise LabelFileError([f"{path}: no {' or '.join(missing)} column (columns: {', '.join(header) or 'none'})"])
    model_column, value_key = columns["model"], columns.get(value_column.lower())
    target_key = columns.get(target_column.lower()) if target_column else None
    labels, problems, seen = [], [], set()
    for line, row in enumerate(raw_rows, start=2):
        name = (row.get(model_column) or "").strip()
        text = (row.get(value_key) or "").strip() if value_key else ""
        if not name:
            problems.append(f"{path}:{line}: empty MODEL name")
            continue
        if name in seen:
            problems.append(f"{path}:{line}: {name} is listed more than once")
            continue
        seen.add(name)
        try:
            value = float(text) if text else None
        except ValueError:
            problems.append(f"{path}:{line}: {name}: {value_key} {text!r} is not a number")
            continue
        if value is None and value_required:
            problems.append(f"{path}:{line}: {name}: no {value_key} value")
            continue
        target = (row.get(target_key) or "").strip() if target_key else None
        labels.append(Label(name, value, target))
    if not labels and not problems:
        problems.append(f"{path}: no rows")
    if problems:
        raise LabelFileError(problems)
    return labels
