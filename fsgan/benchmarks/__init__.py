"""Benchmark data sets built from public sources (one sub-package per benchmark).

A benchmark may add metrics of its own to the metric registry (metrics.registry): METRIC_MODULES lists the
modules that register them on import, one line per benchmark; fsgan.evaluate.metric_registry loads them.
"""
import importlib

METRIC_MODULES = (
    'fsgan.benchmarks.glyphs.metrics',
    'fsgan.benchmarks.emoji.metrics',
)


def register_metrics():
    """Import every module of METRIC_MODULES (each registers its metrics in metrics.registry.REGISTRY)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
