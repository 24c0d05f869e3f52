"""Which files of a folder are complexes to score, and their names (MODEL in result files, graph file names).

A complex is a `.pdb`, `.ent`, `.cif` or `.mmcif` file, optionally gzipped (`.pdb.gz`...); whether it holds PDB
or mmCIF text is decided when it is read, by its content. Its name is its path relative to the folder without
that extension: `model.pdb` -> `model`, and with `recursive`, `job/seed-1_sample-0/model.cif` ->
`job/seed-1_sample-0/model`, so that files with the same name in different subfolders never collide. Every other
entry found is reported with a reason, so that each file of the folder ends up scored or listed.
"""

from __future__ import annotations

import os
from pathlib import Path

STRUCTURE_SUFFIXES = (".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz", ".pdb", ".ent", ".cif", ".mmcif")


def complex_name(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> str:
    """The path relative to `folder` (just the file name without one), '/'-separated, without its structure
    extension (`a.b.pdb` -> `a.b`, `x.pdb.gz` -> `x`, `job/seed-1/model.cif` -> `job/seed-1/model`)."""
    path = Path(path)
    relative = path.relative_to(folder).as_posix() if folder is not None else path.name
    lowered = relative.lower()
    for suffix in STRUCTURE_SUFFIXES:
        if lowered.endswith(suffix) and len(relative) > len(suffix) and relative[-len(suffix) - 1] != "/":
            return relative[: -len(suffix)]
    return relative


def is_structure_file_name(name: str) -> bool:
    return name.lower().endswith(STRUCTURE_SUFFIXES)


def complex_inputs(
    folder: str | os.PathLike, recursive: bool = False
) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """(structure files to score, their names, (name, reason) for every other entry found), in name order.

    Hidden entries (a name starting with '.') are listed, not scored: editors, macOS (`._model.pdb`) and
    version control leave such files beside real ones. A hidden folder is one entry, not searched. Links to
    folders are not followed (they can loop).
    """
    folder = Path(folder)
    found: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError as error:
            skipped.append((relative_name(current, folder) + "/", f"folder not readable: {error.strerror or error}"))
            continue
        for path in entries:
            name = relative_name(path, folder)
            if path.is_dir():
                if path.is_symlink() and recursive:
                    skipped.append((name + "/", "link to a folder: not followed (it could loop)"))
                elif path.name.startswith("."):
                    skipped.append((name + "/", "hidden folder (its name starts with '.'): not searched"))
                elif recursive:
                    pending.append(path)
                else:
                    skipped.append((name + "/", "a folder: pass --recursive to score the structures in subfolders"))
            elif path.name.startswith("."):
                skipped.append((name, "hidden file (its name starts with '.'): not scored; rename it to score it"))
            elif not path.is_file():
                skipped.append((name, "not a regular file"))
            elif not is_structure_file_name(path.name):
                skipped.append((name, f"not a structure file (expected one of {', '.join(STRUCTURE_SUFFIXES)})"))
            else:
                found.append((complex_name(path, folder), path))
    found.sort(key=lambda item: (item[0], item[1].name))
    inputs, names, first = [], [], {}
    for name, path in found:
        if name in first:
            skipped.append((relative_name(path, folder), f"duplicate model name {name} (also {first[name]})"))
            continue
        first[name] = relative_name(path, folder)
        inputs.append(path)
        names.append(name)
    skipped.sort()
    return inputs, names, skipped


def relative_name(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def find_complexes(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The structure files `complex_inputs` would score, in name order."""
    return complex_inputs(folder, recursive)[0]
