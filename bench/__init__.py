"""Benchmarks: anchorflow against its peers, side by side in one run (see BENCHMARKS.md)."""
