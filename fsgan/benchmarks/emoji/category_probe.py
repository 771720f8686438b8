"""Emoji category probe: a small MLP on TF-Inception pool features that names an emoji's category.

The emoji metrics that judge content (emoji_content, emoji_categories) use it instead of the emoji
classifier's category head: on emoji whose content group was never trained on it is right more often, and
it reads the Inception features the FID metrics compute anyway (metrics.inception, 2048-d, PROTOCOL).

Model (CategoryProbe): features standardised by the training set's mean and std, dropout 0.2, a 128-unit
ReLU layer, dropout 0.5, a linear layer to the 9 categories of paths.CATEGORIES.
Training (train_category_probe): the emoji classifier's training and validation sets
(classifier_train.training_sets) and report zips; AdamW with decoupled weight decay, one-cycle lr,
cross-entropy with label smoothing. Seeded: the same seed, features and thread count give the same weights.
The shipped copy is data/emoji/emoji_category_probe.pt (a plain state_dict, loaded with weights_only=True)
next to emoji_category_probe.json (architecture, sha256 of the weights, detector, training command, data
hashes and accuracies).

Typical use::

    probe = load_category_probe(DEFAULT_PATH)
    category = probe.predict(inception_features)      # float [N, 2048] -> int64 [N], indices into CATEGORIES
"""
import hashlib
import json
import math
import os
import time
import zipfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metrics.images import ImageSet
from metrics.inception import PROTOCOL, InceptionDetector, cached_features
from metrics.registry import default_cache_dir

from . import paths
from .classifier import CATEGORY_KEYS, STYLES, load_weights, save_weights
from .classifier_train import data_record, report_zips, training_sets
from .data import load_vendors
from .paths import ROOT

ARCH = 'emoji-category-probe-v1'
WHAT = 'emoji category probe'   # the files' kind, as errors name it
DEFAULT_PATH = os.path.join(ROOT, paths.DATA_DIR, 'emoji_category_probe.pt')
LABEL_SMOOTHING = 0.1


class CategoryProbe(nn.Module):
    """MLP: Inception features float [N, feature_dim] -> category logits [N, num_classes].

    Buffers `mean` and `std` [feature_dim] standardise the features (set from the training features by
    fit_probe); dropout `dropout[0]` on the input and `dropout[1]` on the hidden layer.
    """

    def __init__(self, feature_dim=2048, hidden=128, num_classes=9, dropout=(0.2, 0.5)):
        super().__init__()
        self.register_buffer('mean', torch.zeros(feature_dim))
        self.register_buffer('std', torch.ones(feature_dim))
        self.mlp = nn.Sequential(nn.Dropout(dropout[0]), nn.Linear(feature_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout[1]), nn.Linear(hidden, num_classes))
        self.config = default_config(feature_dim, hidden, dropout)
        self.eval()

    def forward(self, features):
        """features float [N, feature_dim] -> logits float [N, num_classes]."""
        return self.mlp((features - self.mean) / self.std)

    @torch.no_grad()
    def predict(self, features):
        """Features [N, feature_dim] (numpy or tensor) -> category index int64 [N] (CPU)."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(f'the category probe needs features [N, {self.mean.numel()}], got shape {tuple(x.shape)}')
        if len(x) == 0:
            raise ValueError('no features given')
        return self(x).argmax(1)


def default_config(feature_dim=2048, hidden=128, dropout=(0.2, 0.5)):
    """Architecture and class names of a probe (the training record is added by training)."""
    return {'arch': ARCH, 'feature_dim': feature_dim, 'hidden': hidden, 'dropout': list(dropout),
            'categories': list(paths.CATEGORIES), 'category_keys': list(CATEGORY_KEYS),
            'input': f'TF-Inception pool features [N, {feature_dim}] of 64x64 RGB emoji on white ({PROTOCOL})'}


def fit_probe(features, categories, hidden=128, epochs=30, batch_size=128, lr=1e-3, weight_decay=3.0, seed=0):
    """A CategoryProbe trained on features float [N, D] and categories int64 [N] (indices into CATEGORIES).

    AdamW (decoupled weight decay `weight_decay`), one-cycle lr peaking at `lr`, cross-entropy with label
    smoothing LABEL_SMOOTHING, `epochs` passes in seeded random batches. The global RNG is left as it was.
    Returns the probe in eval mode.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(categories), dtype=torch.int64)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f'expected features [N, D] and N categories, got {tuple(x.shape)} and {tuple(y.shape)}')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = CategoryProbe(x.shape[1], hidden, len(paths.CATEGORIES))
        probe.mean.copy_(x.mean(0))
        probe.std.copy_(x.std(0) + 1e-6)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(probe.mlp.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * math.ceil(len(x) / batch_size))
        probe.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), batch_size):
                idx = perm[start:start + batch_size]
                loss = F.cross_entropy(probe(x[idx]), y[idx], label_smoothing=LABEL_SMOOTHING)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return probe.eval()


def category_accuracy(probe, features, categories):
    """{'n', 'category_acc'} of probe on features [N, D] with their categories int64 [N]."""
    hits = probe.predict(features) == torch.as_tensor(np.asarray(categories), dtype=torch.int64)
    return {'n': len(hits), 'category_acc': round(float(hits.double().mean()), 4)}


def unseen_style_accuracy(features, styles, categories, **fit_kwargs):
    """Category accuracy on content seen in training but drawn in a style that was not: for each style s of
    `styles` int64 [N] (indices into classifier.STYLES), a probe fit (fit_probe, fit_kwargs) on the images of the
    other styles scores the images of style s. It tells how much the category rests on knowing the style: the
    shipped probe knows all three, but an adapted G's samples in a target style outside them meet this case.
    Returns {style name: {'n', 'category_acc'}}."""
    styles = torch.as_tensor(np.asarray(styles), dtype=torch.int64)
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(categories), dtype=torch.int64)
    results = {}
    for s in sorted(set(styles.tolist())):
        held = styles == s
        if bool(held.all()):
            raise ValueError('unseen_style_accuracy needs images of at least two styles')
        probe = fit_probe(x[~held], y[~held], **fit_kwargs)
        results[STYLES[s]] = category_accuracy(probe, x[held], y[held])
    return results


def save_category_probe(probe, path):
    """Write probe's state_dict (.pt) and probe.config plus the weights' sha256 (.json), atomically.

    Returns the config written.
    """
    return save_weights(probe.state_dict(), probe.config, path, WHAT)


def load_category_probe(path=DEFAULT_PATH):
    """'<name>.pt' or '<name>.json' -> CategoryProbe (CPU, eval mode) with its config; ValueError if missing,
    foreign or altered."""
    state, config = load_weights(path, ARCH, WHAT)
    probe = CategoryProbe(int(config['feature_dim']), int(config['hidden']), len(config['categories']),
                          tuple(config['dropout']))
    probe.load_state_dict(state)
    probe.config = config
    return probe.eval()


class ArrayImages:
    """uint8 images [N, 3, R, R] in memory with what metrics.inception.cached_features reads of an ImageSet."""

    def __init__(self, images):
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()

    def __len__(self):
        return len(self.images)

    def batches(self, batch_size):
        """Yield lists of at most `batch_size` [R, R, 3] uint8 arrays, in order."""
        for start in range(0, len(self), batch_size):
            yield list(self.images[start:start + batch_size])

    def content_hash(self):
        """Hex sha256 of the shape and bytes of the images."""
        return hashlib.sha256(repr(self.images.shape).encode() + self.images.tobytes()).hexdigest()


def zip_features(detector, zip_path, cache_dir, progress=False):
    """Inception features [N, 2048] and categories int64 [N] of an emoji zip, through the metrics' disk cache
    (the same file FID reads for that zip)."""
    image_set = ImageSet(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        labels = dict(json.loads(zf.read('dataset.json'))['labels'])
    desc = f'Inception features, {os.path.basename(zip_path)}' if progress else None
    features = cached_features(detector, image_set, cache_dir, desc=desc)[0]
    return features, torch.tensor([int(labels[name]) for name in image_set.names])


def train_category_probe(out, data_dir=paths.DATA_DIR, vendors=None, tarballs=None, download_dir=None,
                         detector_source=None, cache_dir=None, hidden=128, epochs=30, batch_size=128, lr=1e-3,
                         weight_decay=3.0, seed=0, command=None, progress=False, log=print):
    """Read the vendors (or take `vendors`), compute Inception features (cached in `cache_dir`, None = the
    metrics' cache), train a probe, score it on the validation set and the shipped test/val zips, and save `out`
    (.pt + .json). detector_source: as metrics.inception.InceptionDetector. Returns the config written."""
    names = report_zips(data_dir)
    t0 = time.time()
    cache_dir = cache_dir or default_cache_dir()
    vendors = vendors or load_vendors(tarballs, download_dir, log=log)
    train, val, num_groups = training_sets(data_dir, vendors, log)
    detector = InceptionDetector(detector_source)

    def features(images, what):
        desc = f'Inception features, {what} ({len(images)} images)' if progress else None
        return cached_features(detector, ArrayImages(images), cache_dir, desc=desc)[0]
    train_f, val_f = features(train[0], 'training set'), features(val[0], 'validation set')
    zips = {n: zip_features(detector, os.path.join(data_dir, n), cache_dir, progress) for n in names}
    feature_seconds = time.time() - t0
    probe = fit_probe(train_f, train[2], hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                      weight_decay=weight_decay, seed=seed)
    results = {n: category_accuracy(probe, *zips[n]) for n in names}
    val_result = category_accuracy(probe, val_f, val[2])
    for n, r in dict(validation=val_result, **results).items():
        log(f'{n:16s} n={r["n"]:5d} category_acc={r["category_acc"]:.4f}')
    unseen = unseen_style_accuracy(train_f, train[1], train[2], hidden=hidden, epochs=epochs, batch_size=batch_size,
                                   lr=lr, weight_decay=weight_decay, seed=seed)
    for style, r in unseen.items():
        log(f'seen content, unseen style {style:9s} n={r["n"]:5d} category_acc={r["category_acc"]:.4f} '
            f'(probe fit on the other styles\' training images)')
    probe.config = dict(probe.config, detector=os.path.basename(detector.source), detector_sha256=detector.sha256,
                        protocol=PROTOCOL, train={
                            'command': command, 'data': data_record(data_dir, names),
                            'num_train': len(train[0]), 'num_val': len(val[0]), **num_groups, 'epochs': epochs,
                            'batch_size': batch_size, 'lr': lr, 'weight_decay': weight_decay,
                            'label_smoothing': LABEL_SMOOTHING, 'seed': seed, 'threads': torch.get_num_threads(),
                            'feature_seconds': round(feature_seconds), 'seconds': round(time.time() - t0),
                            'torch': torch.__version__},
                        val=val_result, eval=results, unseen_style=unseen)
    return save_category_probe(probe, out)
