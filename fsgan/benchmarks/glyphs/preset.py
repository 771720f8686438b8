"""`compare.py --preset glyphs`: every method on the shipped glyph benchmark, over targets x shots x seeds.

The grid, the report and the parallel runs are fsgan.benchmarks.preset's; this module fixes the glyph parts.
"""
from fsgan.benchmarks.preset import Benchmark

from . import paths

KIMG = 2.0          # per run; the paper's 20 kimg is ~20 min per run on 2 CPU cores at this size
BATCH = 16          # under protocol 'ours', which the documented glyph tables ran under

BENCHMARK = Benchmark(
    name='glyphs', title='Glyph benchmark', source=paths.SOURCE_PICKLE, data_dir=paths.DATA_DIR,
    targets={'near': 'near', 'far': 'kannada'},           # target name -> file prefix in data/glyphs
    expect={'near': 'latin', 'far': 'kannada'},           # the script the adapted samples should be in
    metrics=('glyph_fgd', 'glyph_memorisation', 'glyph_diversity', 'glyph_script', 'sharpness'),
    table=('glyph_fgd', 'glyph_memorisation', 'glyph_diversity', 'glyph_script', 'sharpness'),
    shots=(5, 10, 25), seeds=(0, 1, 2), kimg=KIMG, protocol='ours', batch=BATCH, num=500, num_test=1000,
    inception=False)
