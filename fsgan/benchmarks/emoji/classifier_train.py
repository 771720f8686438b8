"""Train the emoji classifier (classifier.EmojiNet) on every vendor's images outside the held-out groups.

Data: all images of the three vendors read from the pinned npm tarballs (data.load_vendors), except
every content group of a shipped test split (noto_test, near_test, far_test: held out for the accuracy
report) and of the validation split (near_val's groups, drawn by all three vendors: the figures that
guide choices). Style label = vendor, category label = the index into paths.CATEGORIES.

Augmentation (augment): a random similarity transform (zoom 0.7-1.2, so the size at which OpenMoji
sits in the frame is no style cue; shift up to 4 px; rotation up to 8 degrees; horizontal flip) on
the white background, then small brightness, contrast and saturation changes and pixel noise.
Training is seeded: the same seed, data and thread count give the same weights.
"""
import json
import math
import os
import time
import zipfile

import torch
import torch.nn.functional as F

from dnnlib.util import file_sha256

from . import paths
from .classifier import (STYLE_OF_VENDOR, STYLES, EmojiClassifier, default_config, read_emoji_zip,
                         save_emoji_classifier)
from .data import convert_images, load_vendors

HELDOUT_ZIPS = ('noto_test.zip', 'near_test.zip', 'far_test.zip')   # groups never trained on; accuracy report
VAL_ZIP = 'near_val.zip'                                             # groups held out for choices (all vendors)
REPORT_ZIPS = HELDOUT_ZIPS + ('near_val.zip', 'far_val.zip')


def zip_groups(zip_paths):
    """Set of the content groups (meta.json 'group') of the images in the given emoji zips."""
    groups = set()
    for path in zip_paths:
        with zipfile.ZipFile(path) as zf:
            groups.update(m['group'] for m in json.loads(zf.read('meta.json')).values())
    return groups


def select_codes(vendor_images, exclude=(), only=None):
    """Sorted codes of one VendorImages whose group is not in `exclude` (and is in `only`, when given)."""
    return sorted(c for c, r in vendor_images.records.items()
                  if r.group not in exclude and (only is None or r.group in only))


def labelled_set(vendors, exclude=(), only=None):
    """Images, style and category labels of every vendor's images selected by select_codes.

    vendors: dict vendor -> data.VendorImages. Returns (uint8 [N, 3, R, R], style int64 [N], category int64 [N]).
    """
    images, styles, categories = [], [], []
    for vendor, vi in sorted(vendors.items()):
        codes = select_codes(vi, exclude, only)
        if not codes:
            continue
        images.append(torch.from_numpy(convert_images(vi, codes, paths.RESOLUTION, paths.BACKGROUND)))
        styles += [STYLES.index(STYLE_OF_VENDOR[vendor])] * len(codes)
        categories += [paths.CATEGORIES.index(vi.records[c].category) for c in codes]
    if not images:
        raise ValueError('no images left for this set once the held-out groups are removed')
    x = torch.cat(images).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(styles), torch.tensor(categories)


def report_zips(data_dir):
    """Names of the REPORT_ZIPS present in data_dir; ValueError naming any held-out or validation zip missing."""
    names = [n for n in REPORT_ZIPS if os.path.isfile(os.path.join(data_dir, n))]
    missing = [n for n in HELDOUT_ZIPS + (VAL_ZIP,) if n not in names]
    if missing:
        raise ValueError(f'{data_dir}: missing {", ".join(missing)} (run scripts/make_emoji_data.py)')
    return names


def training_sets(data_dir, vendors, log=print):
    """The training and validation sets of the emoji classifiers (labelled_set tuples) and their group counts.

    Training: every vendor image outside the groups of HELDOUT_ZIPS and VAL_ZIP in data_dir; validation: the
    images of VAL_ZIP's groups (all vendors) not in a held-out group. Returns (train, val,
    {'heldout_groups': int, 'val_groups': int}).
    """
    heldout = zip_groups(os.path.join(data_dir, n) for n in HELDOUT_ZIPS)
    val_groups = zip_groups([os.path.join(data_dir, VAL_ZIP)]) - heldout
    train = labelled_set(vendors, exclude=heldout | val_groups)
    val = labelled_set(vendors, only=val_groups)
    log(f'training images: {len(train[0])}, validation images: {len(val[0])} '
        f'({len(heldout)} test and {len(val_groups)} validation groups held out)')
    return train, val, {'heldout_groups': len(heldout), 'val_groups': len(val_groups)}


def _uniform(gen, n, lo, hi):
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def augment(x, gen, zoom=(0.7, 1.2), shift_px=4.0, degrees=8.0, jitter=0.05, noise=0.01):
    """Random geometry and colour for float images x [N, 3, R, R] in [-1, 1] on white; returns the same shape.

    Zoom is log-uniform in `zoom` (content scale), shift uniform up to shift_px pixels per axis, rotation
    uniform up to `degrees`, flip with probability 0.5; exposed background is white. Then brightness
    +-jitter, contrast about white 1 +- 2 jitter, saturation 1 +- 2 jitter, Gaussian noise of std `noise`.
    """
    n, r = x.shape[0], x.shape[-1]
    z = torch.exp(_uniform(gen, n, math.log(zoom[0]), math.log(zoom[1])))
    a = _uniform(gen, n, -degrees, degrees) * math.pi / 180
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    t = _uniform(gen, 2 * n, -shift_px, shift_px).view(n, 2) * 2 / r
    theta = torch.stack([torch.stack([torch.cos(a) * flip, -torch.sin(a), t[:, 0]], 1),
                         torch.stack([torch.sin(a) * flip, torch.cos(a), t[:, 1]], 1)], 1)
    theta[:, :, :2] /= z.view(n, 1, 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x - 1, grid, mode='bilinear', padding_mode='zeros', align_corners=False) + 1
    contrast = _uniform(gen, n, 1 - 2 * jitter, 1 + 2 * jitter).view(n, 1, 1, 1)
    x = 1 - contrast * (1 - x) + _uniform(gen, n, -jitter, jitter).view(n, 1, 1, 1)
    grey = x.mean(1, keepdim=True)
    x = grey + _uniform(gen, n, 1 - 2 * jitter, 1 + 2 * jitter).view(n, 1, 1, 1) * (x - grey)
    x = x + noise * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def accuracy(model, images, styles, categories):
    """{'n', 'style_acc', 'category_acc'} of model on uint8 images [N, 3, R, R] with their labels."""
    style, category = model.predict(images)
    return {'n': len(images), 'style_acc': round(float((style == styles).float().mean()), 4),
            'category_acc': round(float((category == categories).float().mean()), 4)}


def zip_accuracy(model, zip_path):
    """accuracy() on an emoji benchmark zip; style labels from meta.json's vendor."""
    images, categories, meta = read_emoji_zip(zip_path)
    styles = torch.tensor([STYLES.index(STYLE_OF_VENDOR[m['vendor']]) for m in meta])
    return accuracy(model, images, styles, categories)


def fit(model, images, styles, categories, epochs, batch_size=64, lr=3e-3, seed=0, val=None, log=print):
    """Train model.net in place: AdamW, one-cycle lr schedule, cross-entropy on both heads.

    images uint8 [N, 3, R, R]; styles, categories int64 [N]; val: (images, styles, categories) scored
    after each epoch, or None. Returns the per-epoch log (list of dicts).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = model.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(len(images) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    history, t0 = [], time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        loss_sum = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            x = augment(images[idx].float() / 127.5 - 1, gen)
            _, style_logits, category_logits = net(x)
            loss = F.cross_entropy(style_logits, styles[idx]) + F.cross_entropy(
                category_logits, categories[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        entry = {'epoch': epoch + 1, 'loss': round(loss_sum / len(images), 4), 'seconds': round(time.time() - t0)}
        if val is not None:
            entry['val'] = accuracy(model.eval(), *val)
            net.train()
        history.append(entry)
        log(' '.join(f'{k}={v}' for k, v in entry.items()))
    model.eval()
    return history


def data_record(data_dir, zip_names):
    """Hashes of the training inputs: the npm tarballs' pinned integrities and the sha256 of the scored zips."""
    packages = {v: f'{p.name}@{p.version} {p.integrity}' for v, p in paths.PACKAGES.items()}
    return {'packages': packages, 'zips': {n: file_sha256(os.path.join(data_dir, n)) for n in zip_names}}


def train_emoji_classifier(out, data_dir=paths.DATA_DIR, vendors=None, tarballs=None, download_dir=None,
                           epochs=30, batch_size=64, lr=3e-3, seed=0, command=None, log=print):
    """Read the vendors (or take `vendors`), train, score the shipped test/val zips and save `out` (.pt + .json).

    vendors: dict vendor -> data.VendorImages (None = read the tarballs, see data.load_vendors);
    command: the command line recorded in the config. Returns the config written (with 'train', 'history' and 'eval' records).
    """
    names = report_zips(data_dir)
    t0 = time.time()
    vendors = vendors or load_vendors(tarballs, download_dir, log=log)
    train, val, num_groups = training_sets(data_dir, vendors, log)
    torch.manual_seed(seed)
    model = EmojiClassifier(default_config())
    history = fit(model, *train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, val=val, log=log)
    results = {n: zip_accuracy(model, os.path.join(data_dir, n)) for n in names}
    for n, r in results.items():
        log(f'{n:16s} n={r["n"]:5d} style_acc={r["style_acc"]:.4f} category_acc={r["category_acc"]:.4f}')
    model.config = dict(model.config, train={
        'command': command, 'data': data_record(data_dir, names),
        'num_train': len(train[0]), 'num_val': len(val[0]), **num_groups, 'epochs': epochs,
        'batch_size': batch_size, 'lr': lr, 'seed': seed,
        'threads': torch.get_num_threads(), 'seconds': round(time.time() - t0), 'torch': torch.__version__},
        history=history, eval=results)
    return save_emoji_classifier(model, out)
