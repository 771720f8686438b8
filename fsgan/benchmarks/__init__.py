"""Benchmark data sets built from public sources (one sub-package per benchmark)."""
