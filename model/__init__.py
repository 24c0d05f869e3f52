"""The TopoQA network and its checkpoint formats."""
