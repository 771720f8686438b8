"""`compare.py --preset emoji`: the shipped 64-px Noto emoji source adapted to Twemoji (near) and OpenMoji (far).

The grid, the report and the parallel runs are fsgan.benchmarks.preset's; this module fixes the emoji parts:
the paper's protocol and length (20 kimg, 16 for 5 shots), every registered method at 10 shots and FSGAN,
TransferGAN and FreezeD at 5 and 25 (the report's scope), and the emoji metrics beside FID/KID, diversity and
memorisation. Diversity is intra-cluster Inception distance (intra_inception): LPIPS weights are a download.
"""
import os

from fsgan.benchmarks.preset import Benchmark
from fsgan.methods import METHODS

from . import paths
from .paths import ROOT

FEW_METHODS = 'fsgan,tgan,freezed'
ALL_METHODS = ','.join(['fsgan', 'tgan', 'freezed', 'ssgan'] + sorted(set(METHODS) - {'fsgan', 'tgan', 'freezed',
                                                                                      'ssgan'}))

BENCHMARK = Benchmark(
    name='emoji', title='Emoji benchmark', source=os.path.join(ROOT, paths.SOURCE_PICKLE),
    data_dir=os.path.join(ROOT, paths.DATA_DIR), targets={'near': 'near', 'far': 'far'},
    metrics=('fid', 'kid', 'emoji_fd', 'emoji_style', 'emoji_content', 'emoji_categories', 'intra_inception',
             'memorization', 'nearest_real', 'sharpness'),
    table=('emoji_fd', 'fid', 'kid', 'emoji_style', 'emoji_content', 'emoji_categories', 'intra_inception',
           'memorization', 'nearest_real'),
    shots=(5, 10, 25), seeds=(0, 1, 2), kimg=None, protocol='paper', num=1000, num_test=0,
    methods={5: FEW_METHODS, 10: ALL_METHODS, 25: FEW_METHODS})
