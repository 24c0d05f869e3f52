"""A run's partial results: what each process has finished, kept on disk as it finishes, so that a killed run
(SIGKILL, power loss) resumes with `--resume` and loses at most the complexes that were in flight.

    OUT/partial/settings.json        the arguments that decide the numbers (a resume with others is refused)
    OUT/partial/process-<k>.jsonl    one line per finished complex, appended (and synced) by process k

Append-only: a line is written whole, then flushed and fsynced; a line cut short by a kill (the last one of a
file, without its newline) is ignored when read, and cut off before that process appends again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from data.files import write_text_atomically

PARTIAL_FOLDER = "partial"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Record:
    """One finished input: its predicted DockQ, or the reason it could not be scored.

    `file` is the input's path relative to the complex folder (what identifies it on resume); `model` its name
    in the outputs. A float goes through JSON as its shortest repr, which reads back to the same bits.
    """

    file: str
    model: str
    pred_dockq: float | None
    reason: str | None


class PartialResults:
    """The partial-results folder of one result folder."""

    def __init__(self, result_folder: str | os.PathLike) -> None:
        self.folder = Path(result_folder) / PARTIAL_FOLDER

    def exists(self) -> bool:
        return self.folder.exists()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, settings: dict[str, str]) -> None:
        """Create the folder and record the settings of this run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.folder / SETTINGS_FILE, json.dumps(settings, indent=1, sort_keys=True) + "\n",
                              overwrite=True)

    def settings(self) -> dict[str, str] | None:
        """The recorded settings, or None when there are none (a run killed before it recorded them)."""
        try:
            return json.loads((self.folder / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            return None

    def records(self) -> dict[str, Record]:
        """Every finished input recorded by any process, by `file`; a torn last line is left out."""
        found: dict[str, Record] = {}
        for path in sorted(self.folder.glob("process-*.jsonl")):
            for line in path.read_bytes().split(b"\n")[:-1]:  # what follows the last newline is torn
                try:
                    record = Record(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # never written by us whole: a kill mid-line, then an append after it
                found.setdefault(record.file, record)
        return found

    def writer(self, process_index: int) -> RecordWriter:
        return RecordWriter(self.folder / f"process-{process_index}.jsonl")


class RecordWriter:
    """Appends records to one process's file, each on disk (fsync) before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "ab")  # noqa: SIM115 - open for the whole run, closed by close()
        cut_torn_line(self._handle)

    def append(self, records: Iterable[Record]) -> None:
        text = "".join(json.dumps(asdict(record), sort_keys=True) + "\n" for record in records)
        self._handle.write(text.encode())
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def cut_torn_line(handle) -> None:
    """Truncate an append-mode file after its last newline, so the next record starts a line of its own."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(handle.name, "rb") as reader:
        data = reader.read()
    if data.endswith(b"\n"):
        return
    handle.truncate(data.rfind(b"\n") + 1)
    handle.flush()
    os.fsync(handle.fileno())
