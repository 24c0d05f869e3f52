"""Scoring many complexes: shares of a run across processes, partial results kept on disk, one progress bar."""
