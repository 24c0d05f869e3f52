"""Featurisation of protein complexes into TopoQA graphs, and graph-file I/O."""
