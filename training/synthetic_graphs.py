"""Synthetic TopoQA graph sets for demos and benchmarks (random features, realistic sizes; not for science).

    python -m training.synthetic_graphs OUT_DIR [--count 96] [--seed 0] [--min_nodes 30 --max_nodes 240]

writes OUT_DIR/graphs/<MODEL>.pt, OUT_DIR/train.csv and OUT_DIR/val.csv (MODEL,dockq; 75/25 split) and
OUT_DIR/config.yaml, a short training configuration that `train.py --config` accepts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml
from torch_geometric.data import Data

from data.files import write_csv
from data.graph_arrays import EDGE_FEATURES, NODE_FEATURES
from model.graph_io import save_graph

EDGES_PER_NODE = 4  # interface graphs of real complexes have about 4 directed edges per node


def synthetic_graph(rng: np.random.Generator, num_nodes: int) -> Data:
    """Two 'chains' of interface residues joined by random cross-chain contacts, each stored in both directions."""
    first_chain = max(1, num_nodes // 2)
    pairs = num_nodes * EDGES_PER_NODE // 2
    source = rng.integers(0, first_chain, pairs)
    target = rng.integers(first_chain, num_nodes, pairs)
    edge_index = np.stack([np.stack([source, target], 1), np.stack([target, source], 1)], 1).reshape(-1, 2).T
    edge_attr = np.repeat(rng.random((pairs, EDGE_FEATURES), dtype=np.float32), 2, axis=0)
    x = rng.random((num_nodes, NODE_FEATURES), dtype=np.float32)
    x[:, 3:32] = 0.0  # one-hot blocks (secondary structure, residue type) like real node features
    x[np.arange(num_nodes), 3 + rng.integers(0, 8, num_nodes)] = 1.0
    x[np.arange(num_nodes), 11 + rng.integers(0, 21, num_nodes)] = 1.0
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.ascontiguousarray(edge_index, dtype=np.int64)),
        edge_attr=torch.from_numpy(edge_attr),
        y=torch.tensor([rng.random()], dtype=torch.float32),
    )


def write_synthetic_set(
    out_dir: str | Path,
    count: int = 96,
    seed: int = 0,
    min_nodes: int = 30,
    max_nodes: int = 240,
    num_epochs: int = 3,
    overwrite: bool = False,
) -> Path:
    """Write graphs, label files and a training config; return the config path."""
    if min_nodes < 2 or max_nodes < min_nodes:
        raise ValueError(f"need 2 <= min_nodes <= max_nodes, not {min_nodes}, {max_nodes}")
    out_dir = Path(out_dir)
    if (out_dir / "config.yaml").exists() and not overwrite:
        raise FileExistsError(f"{out_dir / 'config.yaml'}: a graph set is already there (--overwrite replaces it)")
    rng = np.random.default_rng(seed)
    names = [f"synthetic_{index:05d}" for index in range(count)]
    labels = []
    for name in names:
        graph = synthetic_graph(rng, int(rng.integers(min_nodes, max_nodes + 1)))
        save_graph(graph, out_dir / "graphs" / f"{name}.pt", overwrite=overwrite)
        labels.append(float(graph.y))
    split = max(1, (count * 3) // 4)
    for file_name, rows in (("train.csv", range(split)), ("val.csv", range(split, count))):
        write_csv(out_dir / file_name, ["MODEL", "dockq"], ([names[row], f"{labels[row]:.6f}"] for row in rows),
                  overwrite=overwrite, line_terminator="\r\n")
    config = {
        "graph_dir": "graphs",
        "train_label_file": "train.csv",
        "val_label_file": "val.csv",
        "batch_size": 16,
        "accumulate_grad_batches": 4,
        "learning_rate": 0.005,
        "num_epochs": num_epochs,
        "seed": 222,
    }
    config_path = out_dir / "config.yaml"
    header = "# Synthetic demo set written by training/synthetic_graphs.py\n"
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min_nodes", type=int, default=30)
    parser.add_argument("--max_nodes", type=int, default=240)
    parser.add_argument("--num_epochs", type=int, default=3)
    parser.add_argument("--overwrite", action="store_true", help="replace graphs written earlier in OUT_DIR")
    args = parser.parse_args()
    if args.count < 2:
        parser.error("--count must be at least 2 (one training and one validation graph)")
    try:
        config = write_synthetic_set(
            args.out_dir, args.count, args.seed, args.min_nodes, args.max_nodes, args.num_epochs, args.overwrite
        )
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"synthetic_graphs: {error}") from None
    print(f"wrote {args.count} graphs to {args.out_dir / 'graphs'}; train with: python train.py --config {config}")


if __name__ == "__main__":
    main()
