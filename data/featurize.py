"""PDB complex -> TopoQA graph (SPEC 1.1-1.4), one complex or a whole folder.

    python -m data.featurize --complex_folder DIR --out_dir DIR [--labels CSV] [--geometry xyy|xyz]
                             [--jobs N] [--cache_dir DIR] [--overwrite]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from data.dssp import DsspRun
from data.edges import GEOMETRIES, GEOMETRY_XYY, decimal_ca_coordinates, edge_features
from data.graph_io import GRAPH_FORMAT_VERSION
from data.interface import interface_ids, interface_residues
from data.node_features import node_table
from data.structure import UnscorableComplex, parse_structure, read_first_model_text
from data.topology import topology_table

__all__ = ["UnscorableComplex", "complex_name", "featurize_complex", "featurize_stages", "FeatureStages"]

PDB_SUFFIXES = (".pdb.gz", ".ent.gz", ".pdb", ".ent")


def complex_name(path: str | os.PathLike) -> str:
    """File name without its PDB extension (`a.b.pdb` -> `a.b`, `x.pdb.gz` -> `x`)."""
    name = Path(path).name
    for suffix in PDB_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class FeatureStages:
    """Every intermediate stage of one complex, for parity checks against the reference outputs."""

    name: str
    interface_ids: list[str]
    interface_ca: np.ndarray  # float32 [R, 3]
    topology: np.ndarray  # float64 [R, 140], raw
    node_ids: list[str]
    node_features: np.ndarray  # float64 [N, 172]
    graph: Data


def featurize_stages(path: str | os.PathLike, geometry: str = GEOMETRY_XYY) -> FeatureStages:
    """Featurise one complex and keep every stage. Raises UnscorableComplex for input that cannot be scored."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    structure = parse_structure(read_first_model_text(path))
    interface = interface_residues(structure)
    dssp = DsspRun(structure.pdb_text)  # runs in the background while the topology is computed
    try:
        ids = interface_ids(structure, interface)
        ca = structure.atom_xyz[structure.residue_ca[interface]]
        topology = topology_table(structure.atom_xyz, structure.atom_name_initial, ca)
        dssp_residues = dssp.result()
    finally:
        dssp.close()

    kept, features = node_table(structure, interface, topology, dssp_residues)
    if len(kept) == 0:
        raise UnscorableComplex("no interface residue left after DSSP (none reported or all with unknown rASA)")
    nodes = interface[kept]
    edge_index, edge_attr = edge_features(structure, nodes, decimal_ca_coordinates(ca[kept]), geometry)
    if edge_index.shape[1] == 0:
        raise UnscorableComplex("no interface edge: no cross-chain node pair under 10 A after DSSP filtering")
    name = complex_name(path)
    graph = Data(
        x=torch.from_numpy(features.astype(np.float32)),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edge_attr.astype(np.float32)),
    )
    graph.name = name
    graph.geometry = geometry
    graph.feature_version = GRAPH_FORMAT_VERSION
    return FeatureStages(
        name=name, interface_ids=ids, interface_ca=ca, topology=topology,
        node_ids=[ids[k] for k in kept], node_features=features, graph=graph,
    )


def featurize_complex(path: str | os.PathLike, geometry: str = GEOMETRY_XYY) -> Data:
    """One PDB complex -> PyG graph (x [N,172], edge_index [2,E], edge_attr [E,11], name, geometry, version)."""
    return featurize_stages(path, geometry).graph
