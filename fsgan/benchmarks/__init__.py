"""Benchmark data sets built from public sources (one sub-package per benchmark).

A benchmark may add metrics of its own to the metric registry (metrics.registry): METRIC_MODULES lists the
modules that register them on import, one line per benchmark; fsgan.evaluate.metric_registry loads them.
PRESET_MODULES names each benchmark's preset module (its BENCHMARK, a fsgan.benchmarks.preset.Benchmark) for
`compare.py --preset NAME`, one line per benchmark.
"""
import importlib
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

METRIC_MODULES = (
    'fsgan.benchmarks.glyphs.metrics',
    'fsgan.benchmarks.emoji.metrics',
)


def register_metrics():
    """Import every module of METRIC_MODULES (each registers its metrics in metrics.registry.REGISTRY)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)

PRESET_MODULES = {
    'glyphs': 'fsgan.benchmarks.glyphs.preset',
    'emoji': 'fsgan.benchmarks.emoji.preset',
}


def benchmark(name):
    """The Benchmark of preset `name` (a key of PRESET_MODULES)."""
    return importlib.import_module(PRESET_MODULES[name]).BENCHMARK
