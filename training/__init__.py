"""Training: graph sets in memory, batching, determinism, configuration, best-k bookkeeping, metrics and the
Lightning checkpoint layout."""
