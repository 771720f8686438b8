"""Emoji classifier: a small CNN for 64x64 RGB emoji with a style (vendor) head and a category head.

Its penultimate activations (`feature_dim` values, post-ReLU) stand in for Inception features on the
emoji benchmark: the emoji Fréchet distance (metrics.emoji_metrics) is the FID formula on them.
`classifier_train.train_emoji_classifier` trains it; the shipped copy is data/emoji/emoji_classifier.pt
(a plain state_dict, loaded with weights_only=True) next to emoji_classifier.json (architecture, class
names, sha256 of the weights, training command, data hashes and accuracies).

Typical use::

    clf = load_emoji_classifier(DEFAULT_PATH)
    images, categories, meta = read_emoji_zip('data/emoji/near_test.zip')   # uint8 [N, 3, 64, 64]
    style, category = clf.predict(images)                                    # indices into STYLES, CATEGORIES
"""
import io
import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch
from torch import nn

from dnnlib.fileio import atomic_open
from dnnlib.util import file_sha256

from . import paths
from .paths import ROOT

ARCH = 'emojinet-v1'
DEFAULT_PATH = os.path.join(ROOT, paths.DATA_DIR, 'emoji_classifier.pt')

# Style classes (the benchmark's domain names) and the vendor each one is in meta.json.
STYLES = ('noto', 'twemoji', 'openmoji')
STYLE_OF_VENDOR = {'google': 'noto', 'twitter': 'twemoji', 'openmoji': 'openmoji'}
# Short keys of paths.CATEGORIES, in the same order, for metric value names.
CATEGORY_KEYS = ('smileys', 'people', 'animals', 'food', 'travel', 'activities', 'objects', 'symbols', 'flags')


class EmojiNet(nn.Module):
    """CNN: float [N, 3, 64, 64] in [-1, 1] -> features [N, feature_dim], style and category logits.

    A 4x4 stride-2 conv (64 -> 32 px), then 3x3 conv + BN + ReLU stages at 32, 16 and 8 px (one, two and
    one layers), each followed by 2x2 max-pooling, down to widths[-1] x 4 x 4; a fully connected feature
    layer (post-ReLU) and two linear heads.
    """

    def __init__(self, widths=(24, 48, 96, 96), feature_dim=128, num_styles=3, num_categories=9, dropout=0.2):
        super().__init__()
        w0, w1, w2, w3 = widths
        layers = [nn.Conv2d(3, w0, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True)]
        for cin, cout, pool in ((w0, w1, True), (w1, w2, False), (w2, w2, True), (w2, w3, True)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(w3 * 16, feature_dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.style_head = nn.Linear(feature_dim, num_styles)
        self.category_head = nn.Linear(feature_dim, num_categories)

    def forward(self, x):
        """x: float [N, 3, 64, 64] in [-1, 1] -> (features [N, D], style logits [N, S], category logits [N, K])."""
        f = self.embed(self.trunk(x))
        h = self.drop(f)
        return f, self.style_head(h), self.category_head(h)


def default_config():
    """Architecture and class names of a new classifier (the training record is added by training)."""
    return {'arch': ARCH, 'resolution': paths.RESOLUTION, 'widths': [24, 48, 96, 96], 'feature_dim': 128,
            'dropout': 0.2, 'styles': list(STYLES), 'categories': list(paths.CATEGORIES),
            'category_keys': list(CATEGORY_KEYS),
            'input': 'RGB uint8 [N, 3, 64, 64] in [0, 255] or float in [-1, 1], emoji on white'}


class EmojiClassifier(nn.Module):
    """A classifier with its config: input conversion, features and predictions (eval mode, no grad)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.resolution = int(config['resolution'])
        self.styles = list(config['styles'])
        self.categories = list(config['categories'])
        self.net = EmojiNet(widths=tuple(config['widths']), feature_dim=int(config['feature_dim']),
                            num_styles=len(self.styles), num_categories=len(self.categories),
                            dropout=float(config['dropout']))
        self.eval()

    @property
    def device(self):
        return next(self.parameters()).device

    def prepare(self, images):
        """uint8 [N, 3, R, R] in [0, 255] or float in [-1, 1] -> float32 [N, 3, R, R] in [-1, 1] on the device."""
        x = torch.as_tensor(images)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f'expected RGB images [N, 3, H, W], got shape {tuple(x.shape)}')
        if tuple(x.shape[2:]) != (self.resolution, self.resolution):
            raise ValueError(f'the emoji classifier needs {self.resolution}x{self.resolution} images, '
                             f'got {x.shape[3]}x{x.shape[2]}')
        if x.dtype == torch.uint8:
            return x.to(self.device, torch.float32) / 127.5 - 1
        if x.is_floating_point():
            return x.to(self.device, torch.float32).clamp(-1, 1)
        raise ValueError(f'expected uint8 or floating images, got {x.dtype}')

    @torch.no_grad()
    def infer(self, images, batch_size=256):
        """Images [N, 3, R, R] -> (features [N, D], style logits [N, S], category logits [N, K]), float32 CPU."""
        if len(images) == 0:
            raise ValueError('no images given')
        outs = [[], [], []]
        for start in range(0, len(images), batch_size):
            for acc, t in zip(outs, self.net(self.prepare(images[start:start + batch_size]))):
                acc.append(t.float().cpu())
        return tuple(torch.cat(o) for o in outs)

    def features(self, images, batch_size=256):
        """Penultimate features: images [N, 3, R, R] -> float32 [N, feature_dim] (CPU)."""
        return self.infer(images, batch_size)[0]

    def predict(self, images, batch_size=256):
        """Images [N, 3, R, R] -> (style index [N], category index [N]), int64 CPU."""
        _, style, category = self.infer(images, batch_size)
        return style.argmax(1), category.argmax(1)


def weights_paths(path, what='emoji classifier'):
    """'<name>.pt' or '<name>.json' -> (weights path, config path); `what` names the file kind in the error."""
    stem, ext = os.path.splitext(os.fspath(path))
    if ext not in ('.pt', '.json'):
        raise ValueError(f'{path}: expected a .pt or .json {what} path')
    return stem + '.pt', stem + '.json'


def save_weights(state_dict, config, path, what='emoji classifier'):
    """Write state_dict (.pt, detached CPU copies) and config plus the weights' file name and sha256 (.json),
    atomically, at weights_paths(path). Returns the config written."""
    wpath, cpath = weights_paths(path, what)
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    with atomic_open(wpath) as f:
        torch.save(state, f)
    config = dict(config, weights_file=os.path.basename(wpath), weights_sha256=file_sha256(wpath))
    with atomic_open(cpath) as f:
        f.write(json.dumps(config, indent=1, ensure_ascii=False).encode())
    return config


def load_weights(path, arch, what='emoji classifier'):
    """'<name>.pt' or '<name>.json' -> (state_dict, config) as save_weights wrote them; ValueError if a file is
    missing, the config's arch is not `arch`, or the weights' sha256 differs from the recorded one."""
    wpath, cpath = weights_paths(path, what)
    for p in (wpath, cpath):
        if not os.path.isfile(p):
            raise ValueError(f'{p}: no such file (the {what} needs both .pt and .json)')
    with open(cpath, encoding='utf-8') as f:
        config = json.load(f)
    if config.get('arch') != arch:
        raise ValueError(f'{cpath}: unsupported arch {config.get("arch")!r} (expected {arch})')
    if config.get('weights_sha256') != file_sha256(wpath):
        raise ValueError(f'{wpath}: sha256 does not match the one recorded in {cpath}')
    return torch.load(wpath, map_location='cpu', weights_only=True), config


def save_emoji_classifier(model, path):
    """Write model.net's state_dict (.pt) and model.config plus the weights' sha256 (.json), atomically.

    Returns the config written.
    """
    return save_weights(model.net.state_dict(), dict(model.config, arch=ARCH), path)


def load_emoji_classifier(path=DEFAULT_PATH, device='cpu'):
    """'<name>.pt' or '<name>.json' -> EmojiClassifier in eval mode; ValueError if missing, foreign or altered."""
    state, config = load_weights(path, ARCH)
    model = EmojiClassifier(config)
    model.net.load_state_dict(state)
    return model.to(device).eval()


def read_emoji_zip(path, limit=None):
    """An emoji benchmark zip -> (uint8 images [N, 3, R, R], category int64 [N], meta list of N dicts).

    Images follow dataset.json's order (file-name order); meta entries are meta.json's
    {unified, category, short_name, vendor, group}; `limit` keeps the first `limit` images.
    """
    with zipfile.ZipFile(path) as zf:
        labels = json.loads(zf.read('dataset.json'))['labels'][:limit]
        meta = json.loads(zf.read('meta.json'))
        arrays = [np.asarray(PIL.Image.open(io.BytesIO(zf.read(name))).convert('RGB')) for name, _ in labels]
    if not arrays:
        raise ValueError(f'{path}: no images')
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    categories = torch.tensor([int(c) for _, c in labels], dtype=torch.int64)
    return images, categories, [meta[name] for name, _ in labels]
