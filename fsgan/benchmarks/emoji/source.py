"""The emoji source network: its report (the figures the benchmark asks of a source) and shipping it.

source_report measures a generator's samples (seeds 0..num-1, psi 1) against the real Noto images:
Inception FID against every Noto image (the pretraining set noto_train.zip, re-made in data/emoji/cache by
scripts/make_emoji_data.py, plus the held-out noto_test.zip), and beside it the floor, the held-out real
images against the pretraining images computed the same way (`fid_floor_test_vs_train`, at their own counts,
406 against 3,375), and that floor moved to the sample counts of the generator's FID (`fid_floor_at_num`,
num against every Noto image) with FID's finite-sample bias fitted on splits of the pretraining images
(metrics.frechet.fid_bias_fit; `fid_bias_fit` holds its a and b); the emoji classifier's style shares (the share
called Noto) and the category probe's shares (on the same Inception features) against the real Noto set (each
category within half and twice its real share).

ship_emoji_source writes data/emoji/source_emoji64.pkl (the snapshot's G_ema and D), its record
source_emoji64.json (sha256, the training stages and options back to the run from scratch, kimg, the report)
and data/emoji/previews/source_samples.png (64 samples, psi 1).
"""
import os

import numpy as np

from fsgan.benchmarks.ship import ShipError, recorded_path, total_kimg, training_stages

from . import paths
from .paths import ROOT

DATA_DIR = os.path.join(ROOT, paths.DATA_DIR)
TRAIN_ZIP = os.path.join(ROOT, paths.CACHE_DIR, paths.NOTO_TRAIN)
TEST_ZIP = os.path.join(ROOT, paths.DATA_DIR, paths.NOTO_TEST)
GRID_NAME = 'source_samples.png'   # in data/emoji/previews
FID_BAR, NOTO_BAR = 40.0, 0.9      # the benchmark's acceptance: FID <= 40, >= 90% of samples called Noto


def _inception_features(ctx, image_set):
    """Inception features [N, 2048] of an ImageSet through ctx's detector and disk cache."""
    from metrics.inception import cached_features
    return cached_features(ctx.detector(), image_set, ctx.cache_dir, ctx.batch_size)[0]


def _class_shares(indices, names):
    """{name: share of the class indices int64 [N] that are that class's}."""
    counts = np.bincount(indices.numpy(), minlength=len(names))
    return {name: float(c) / len(indices) for name, c in zip(names, counts)}


def classifier_figures(clf, probe, gen, gen_features, real_features):
    """Style shares of ImageSet gen (the classifier's), its category shares and those of the real images (the
    probe's, on Inception features gen_features [N, 2048] and real_features [M, 2048]), and the categories outside
    half..twice their real share."""
    import torch
    from .classifier import CATEGORY_KEYS
    from .metrics import image_set_outputs
    style = image_set_outputs(clf, gen)[1].argmax(1)
    gen_cat = _class_shares(probe.predict(gen_features), CATEGORY_KEYS)
    real_cat = _class_shares(probe.predict(real_features), CATEGORY_KEYS)
    outside = [k for k in CATEGORY_KEYS if not real_cat[k] / 2 <= gen_cat[k] <= 2 * real_cat[k]]
    return dict(style_shares=_class_shares(style, clf.styles), category_shares=gen_cat,
                real_category_shares=real_cat, categories_outside=outside)


def source_report(G, sample_dir, num=5000, train_zip=TRAIN_ZIP, test_zip=TEST_ZIP, device='cpu', batch=32,
                  cache_dir=None):
    """The figures of a source generator G (eval mode): see the module docstring. sample_dir receives its
    `num` samples. Returns a JSON-ready dict."""
    from fsgan import evaluate
    from metrics.frechet import fid_bias_fit, fid_from_features
    from metrics.images import ImageSet
    from metrics.registry import MetricContext, default_cache_dir
    from .category_probe import DEFAULT_PATH as PROBE_PATH, load_category_probe
    from .classifier import DEFAULT_PATH, load_emoji_classifier
    for path in (train_zip, test_zip):
        if not os.path.isfile(path):
            raise ShipError(f'{path}: missing; make it with scripts/make_emoji_data.py')
    gen = ImageSet(evaluate.write_samples(G, sample_dir, range(num), trunc=1.0, device=device, batch=batch))
    train, test = ImageSet(train_zip), ImageSet(test_zip)
    ctx = MetricContext(gen=gen, device=device, batch_size=batch, cache_dir=cache_dir or default_cache_dir())
    gen_f, train_f, test_f = ctx.features('gen'), _inception_features(ctx, train), _inception_features(ctx, test)
    real_f = np.concatenate([train_f, test_f])
    floor = fid_from_features(test_f, train_f)
    a, b = fid_bias_fit(train_f)
    report = dict(num=num, trunc=1.0, train_set=recorded_path(train_zip), test_set=recorded_path(test_zip),
                  num_train=len(train), num_test=len(test), fid_all_noto=fid_from_features(gen_f, real_f),
                  fid_floor_test_vs_train=floor,
                  fid_floor_at_num=floor - a / len(test) - b / len(train) + a / num + b / len(real_f),
                  fid_bias_fit=dict(a=a, b=b))
    clf = load_emoji_classifier(DEFAULT_PATH, device=device)
    report.update(classifier_figures(clf, load_category_probe(PROBE_PATH), gen, gen_f, real_f))
    report['acceptance'] = dict(fid_at_most_40=report['fid_all_noto'] <= FID_BAR,
                                noto_at_least_90=report['style_shares']['noto'] >= NOTO_BAR,
                                categories_within=not report['categories_outside'])
    return evaluate.json_safe(report)


def check_source_generator(G, device):
    """ShipError unless `device` is usable here and G draws the benchmark's 64x64 RGB images."""
    import torch
    if device == 'cuda' and not torch.cuda.is_available():
        raise ShipError('--device cuda: no CUDA device here; use --device cpu')
    if G is None:
        raise ShipError('the snapshot holds no G_ema to ship')
    if (G.img_channels, G.img_resolution) != (3, 64):
        raise ShipError(f'the emoji source draws 64x64 RGB images; this network draws {G.img_resolution}x'
                        f'{G.img_resolution} with {G.img_channels} channel(s)')


def ship_emoji_source(snapshot, data_dir=DATA_DIR, num=5000, train_zip=TRAIN_ZIP, test_zip=TEST_ZIP, device='cpu',
                      cache_dir=None, report=True, overwrite=False):
    """Copy `snapshot` (G_ema and D) to data_dir/source_emoji64.pkl with its record and sample grid.

    report False: no source_report (None in the record; e.g. on a machine without the Inception weights); the
    written pickle shipped again from a copy of the run folder adds it. Returns the record. Raises ShipError
    (checked before anything is written) when the snapshot is not in a run folder, its training record is
    incomplete, the real Noto sets are missing, it is not a 64x64 RGB generator, the device is missing, or
    data_dir already holds a source and `overwrite` is False. The pickle, the grid and the record are made in a
    temporary folder first and written into data_dir (each atomically) at the end: a failed report leaves nothing."""
    import tempfile
    from dnnlib.fileio import atomic_write_bytes, atomic_write_json
    from dnnlib.util import file_sha256
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    from fsgan.sampling import generate_images, load_generator
    from torch_utils.image_grid import save_png, tile
    stages = training_stages(snapshot)
    if not stages:
        raise ShipError(f'{snapshot}: no training_options.json next to it; give a snapshot in a run folder')
    for path in (train_zip, test_zip) if report else ():
        if not os.path.isfile(path):
            raise ShipError(f'{path}: missing; make it with scripts/make_emoji_data.py')
    out = os.path.join(data_dir, os.path.basename(paths.SOURCE_PICKLE))
    if os.path.exists(out) and not overwrite:
        raise ShipError(f'{out}: exists; pass --overwrite to replace it (the new record keeps the stages of the '
                        f'one it replaces)')
    net = load_network(snapshot)
    check_source_generator(net['G_ema'], device)
    with tempfile.TemporaryDirectory(prefix='fsgan-ship-') as staging:
        staged = os.path.join(staging, os.path.basename(out))
        save_snapshot(staged, None, net['D'], net['G_ema'], net.get('training_set_kwargs'))
        G, _sha = load_generator(staged, device=device)
        figures = None
        if report:
            with tempfile.TemporaryDirectory(prefix='fsgan-source-') as tmp:
                figures = source_report(G, tmp, num, train_zip, test_zip, device, cache_dir=cache_dir)
        staged_grid = os.path.join(staging, GRID_NAME)
        save_png(tile(generate_images(G, list(range(64)), trunc=1.0, device=device), cols=8), staged_grid)
        record = dict(sha256=file_sha256(staged), bytes=os.path.getsize(staged), snapshot=stages[-1]['snapshot'],
                      snapshot_sha256=net['sha256'], kimg=total_kimg(stages),
                      training_options=stages[-1]['training_options'], stages=stages, report=figures,
                      grid=os.path.join(paths.PREVIEW_DIR, GRID_NAME), grid_sha256=file_sha256(staged_grid))
        os.makedirs(os.path.join(data_dir, paths.PREVIEW_DIR), exist_ok=True)
        for src, dst in ((staged, out), (staged_grid, os.path.join(data_dir, paths.PREVIEW_DIR, GRID_NAME))):
            with open(src, 'rb') as f:
                atomic_write_bytes(dst, f.read())
    atomic_write_json(os.path.join(data_dir, os.path.basename(paths.SOURCE_RECORD)), record)
    return record
