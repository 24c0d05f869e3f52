"""Featurise a folder of complexes (PDB or mmCIF) into TopoQA graph files (`<MODEL>.pt`), e.g. a training set.

    python featurize.py --complex_folder DIR --out_dir DIR [--recursive] [--labels CSV] [--geometry xyy|xyz]
                        [--jobs N] [--cache_dir DIR] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.edges import GEOMETRIES, GEOMETRY_XYY
from data.featurize import featurize_many
from data.files import write_csv
from data.graph_cache import CACHE_ENV, default_cache_dir
from data.inputs import STRUCTURE_SUFFIXES, complex_inputs
from data.labels import LabelFileError, read_labels
from data.topology import alpha_precision
from data.workers import exit_on_interrupt, interrupts_deferred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python featurize.py", description="Featurise a folder of complexes into TopoQA graph files."
    )
    parser.add_argument("--complex_folder", required=True, help="folder of PDB or mmCIF files (.pdb, .ent, .cif, "
                        ".mmcif, each optionally .gz)")
    parser.add_argument("--recursive", action="store_true", help="also the structures in subfolders, named by their "
                        "path relative to the folder (graph files go to the same subfolders of --out_dir)")
    parser.add_argument("--out_dir", required=True, help="where <MODEL>.pt graph files and skipped.csv go")
    parser.add_argument("--labels", help="CSV with MODEL and a DockQ column: attaches y (float32 [1]) to each graph")
    parser.add_argument("--label_column", default="dockq", help="label column in --labels (case-insensitive)")
    parser.add_argument("--geometry", choices=GEOMETRIES, default=GEOMETRY_XYY,
                        help="edge histogram points: xyy reproduces the reference (and the published checkpoint); "
                             "xyz uses true coordinates, for retraining")
    parser.add_argument("--jobs", type=int, default=1, help="complexes featurised in parallel (processes)")
    parser.add_argument("--cache_dir", default=None,
                        help=f"content-hash cache (default ${CACHE_ENV}, else ~/.cache/topoqa/graphs)")
    parser.add_argument("--no_cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--overwrite", action="store_true", help="replace existing graph files in --out_dir")
    args = parser.parse_args(argv)

    folder, out_dir = Path(args.complex_folder), Path(args.out_dir)
    if not folder.is_dir():
        print(f"error: {folder}: not a folder", file=sys.stderr)
        return 2
    try:
        alpha_precision()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    labels = None
    if args.labels:
        try:
            labels = {label.model: label.value for label in read_labels(args.labels, args.label_column)}
        except LabelFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    inputs, names, skipped = complex_inputs(folder, recursive=args.recursive)
    todo, todo_names = [], []
    for path, name in zip(inputs, names, strict=True):
        if (out_dir / f"{name}.pt").exists() and not args.overwrite:
            skipped.append((name, f"{out_dir / (name + '.pt')} already exists (pass --overwrite to replace it)"))
            continue
        if labels is not None and name not in labels:
            skipped.append((name, f"no label in {args.labels}"))
            continue
        todo.append(path)
        todo_names.append(name)
    if not inputs:
        print(f"error: no structure files ({', '.join(STRUCTURE_SUFFIXES)}) in {folder}", file=sys.stderr)
        return 1

    cache_dir = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    results = featurize_many(todo, geometry=args.geometry, jobs=args.jobs, cache_dir=cache_dir, names=todo_names)
    # torch only now: the featurisation workers are forked from this process and must not inherit its threads.
    with interrupts_deferred():  # a Ctrl-C during torch's import would be lost
        import torch

        from model.graph_io import save_graph

    written = 0
    for result in results:
        if result.graph is None:
            skipped.append((result.name, result.reason or "unknown"))
            continue
        graph = result.graph
        if labels is not None:
            graph.y = torch.tensor([labels[result.name]], dtype=torch.float32)
        save_graph(graph, out_dir / f"{result.name}.pt", overwrite=args.overwrite)
        written += 1

    skipped_csv = out_dir / "skipped.csv"
    write_csv(skipped_csv, ["MODEL", "REASON"], skipped, overwrite=True)  # this run's list, like result files
    for name, reason in skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"featurised {written} complex(es) into {out_dir}; skipped {len(skipped)} (listed in {skipped_csv})")
    return 0 if written or any("already exists" in reason for _, reason in skipped) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        exit_on_interrupt("featurize.py")
