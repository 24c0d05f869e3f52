"""Writing user-visible files safely (atomically, never over an existing file unless asked), and hashing them."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], overwrite: bool = False) -> None:
    """Call `write(temporary_path)` then rename it onto `path`, so readers never see half a file.

    Refuses to replace an existing `path` unless `overwrite`. The file gets the permissions a
    plain open() would give (umask applied): safetensors and mkstemp would make it private.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        mode = stat.S_IMODE(os.stat(temporary).st_mode)
        write(temporary)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    atomic_write(path, lambda target: target.write_text(text), overwrite)


def write_csv(
    path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence | Mapping], *, overwrite: bool = False,
    line_terminator: str = "\n",
) -> None:
    """A CSV file written atomically: the header, then each row (a sequence, or a mapping by column name,
    missing entries empty). `line_terminator` "\r\n" gives the files Lightning's CSV logger writes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_terminator)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns] if isinstance(row, Mapping) else row)
    write_text_atomically(path, buffer.getvalue(), overwrite)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
