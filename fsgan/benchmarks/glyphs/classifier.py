"""Glyph classifier (script + character) and Fréchet glyph distance (FGD).

The classifier is a small CNN trained by ``scripts/train_glyph_classifier.py``
on the rendered glyph datasets (``scripts/make_glyph_data.py``).  Its
penultimate activations (``feature_dim`` values, post-ReLU) play the role that
Inception pool features play in FID: FGD is the Fréchet distance between
Gaussians fitted to the features of two image sets.

Weights are stored as a plain ``state_dict`` (``<name>.pt``, loaded with
``weights_only=True``) next to a JSON config (``<name>.json``) holding the
architecture, the script / class names and the sha256 of the weights file.

Typical use::

    clf = load_glyph_classifier('data/glyphs/glyph_classifier.pt')
    imgs_a, _ = load_dataset_zip('data/glyphs/near_test.zip')
    imgs_b, _ = load_dataset_zip('data/glyphs/near_shots100.zip')
    fgd = fgd_between(clf, imgs_a, imgs_b)
"""

import json
import os

import torch
from torch import nn

from dnnlib.fileio import atomic_open
from dnnlib.util import file_sha256 as sha256_file
from fsgan.benchmarks.glyphs import GLYPHS
from metrics.frechet import fid_from_features

ARCH = 'glyphnet-v1'
DEFAULT_PATH = os.path.join(GLYPHS, 'glyph_classifier.pt')  # shipped with the benchmark (weights .pt + config .json)


class GlyphNet(nn.Module):
    """CNN: [N, C, R, R] in [-1, 1] -> features [N, feature_dim], script / char / font-family logits.

    Three conv stages (one, two and two 3x3 conv + BN + ReLU layers, each
    followed by 2x2 max-pool), pooled to 4x4, then a fully connected
    feature layer and three linear heads.  The font-family head is a
    training aid that makes the features sensitive to style, not only to
    character identity.
    """

    def __init__(self, channels=1, widths=(16, 32, 64), feature_dim=128,
                 num_scripts=3, num_classes=181, num_families=1, dropout=0.3):
        super().__init__()
        layers, cin = [], channels
        for stage, width in enumerate(widths):
            for _ in range(1 if stage == 0 else 2):
                layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                cin = width
            layers.append(nn.MaxPool2d(2))
        layers.append(nn.AdaptiveAvgPool2d(4))
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(cin * 16, feature_dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.script_head = nn.Linear(feature_dim, num_scripts)
        self.char_head = nn.Linear(feature_dim, num_classes)
        self.family_head = nn.Linear(feature_dim, num_families)

    def forward(self, x):
        """x: float [N, C, R, R] in [-1, 1] -> (features [N, D], script, char, family logits)."""
        f = self.embed(self.trunk(x))
        h = self.drop(f)
        return f, self.script_head(h), self.char_head(h), self.family_head(h)


class GlyphClassifier(nn.Module):
    """Loaded classifier: input conversion, features, predictions (eval mode, no grad)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.resolution = int(config['resolution'])
        self.channels = int(config['channels'])
        self.script_names = list(config['scripts'])
        self.classes = list(config['classes'])
        self.net = GlyphNet(channels=self.channels, widths=tuple(config['widths']),
                            feature_dim=int(config['feature_dim']), num_scripts=len(self.script_names),
                            num_classes=len(self.classes), num_families=len(config['families']),
                            dropout=float(config.get('dropout', 0.3)))
        self.eval()

    @property
    def device(self):
        return next(self.parameters()).device

    def prepare(self, images):
        """uint8 [0, 255] or float [-1, 1] images [N, C, R, R] -> float [N, channels, R, R] on device.

        1 <-> 3 channel inputs are converted (gray = channel mean, or gray replicated).
        """
        x = torch.as_tensor(images)
        if x.ndim != 4:
            raise ValueError(f'expected images [N, C, H, W], got shape {tuple(x.shape)}')
        if tuple(x.shape[2:]) != (self.resolution, self.resolution):
            raise ValueError(f'expected {self.resolution}x{self.resolution} images, got {tuple(x.shape[2:])}')
        if x.dtype == torch.uint8:
            x = x.to(self.device, torch.float32) / 127.5 - 1
        elif x.is_floating_point():
            x = x.to(self.device, torch.float32).clamp(-1, 1)
        else:
            raise ValueError(f'expected uint8 or floating images, got {x.dtype}')
        c = x.shape[1]
        if c == self.channels:
            return x
        if c == 3 and self.channels == 1:
            return x.mean(dim=1, keepdim=True)
        if c == 1 and self.channels == 3:
            return x.expand(-1, 3, -1, -1)
        raise ValueError(f'expected 1 or 3 channels, got {c}')

    @torch.no_grad()
    def infer(self, images, batch_size=512):
        """Images [N, C, R, R] -> (features [N, D], script logits [N, S], char logits [N, K]), float32 CPU."""
        outs = [[], [], []]
        for start in range(0, len(images), batch_size):
            for acc, t in zip(outs, self.net(self.prepare(images[start:start + batch_size]))):
                acc.append(t.float().cpu())
        if not outs[0]:
            raise ValueError('no images given')
        return [torch.cat(o) for o in outs]

    def features(self, images, batch_size=512):
        """Penultimate features: images [N, C, R, R] -> float32 [N, feature_dim] (CPU)."""
        return self.infer(images, batch_size)[0]

    def predict(self, images, batch_size=512):
        """Images [N, C, R, R] -> (script index [N], global char label [N]) int64 (CPU)."""
        _, s, c = self.infer(images, batch_size)
        return s.argmax(1), c.argmax(1)

    def char_script(self):
        """Script index of every global char label: int64 [num_classes]."""
        return torch.tensor([self.script_names.index(c['script']) for c in self.classes])


def _paths(path):
    """Accept '<name>.pt' or '<name>.json'; return (weights path, config path)."""
    stem, ext = os.path.splitext(os.fspath(path))
    if ext not in ('.pt', '.json'):
        raise ValueError(f'expected a .pt or .json classifier path, got {path}')
    return stem + '.pt', stem + '.json'


def write_manifest(folder, skip=('MANIFEST.json', 'README.md')):
    """Write folder/MANIFEST.json: {"files": {relpath: {sha256, bytes}}} of every file but skip/hidden ones."""
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(root, name), folder)
            if name.startswith('.') or rel in skip:
                continue
            files[rel] = {'sha256': sha256_file(os.path.join(root, name)), 'bytes': os.path.getsize(os.path.join(root, name))}
    manifest = {'files': files}
    with atomic_open(os.path.join(folder, 'MANIFEST.json')) as f:
        f.write(json.dumps(manifest, indent=1).encode())
    return manifest


def save_glyph_classifier(model, path):
    """Write model.net's state_dict (.pt) and model.config plus weights sha256 (.json), atomically.

    Returns the config dict written.
    """
    wpath, cpath = _paths(path)
    state = {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}
    with atomic_open(wpath) as f:
        torch.save(state, f)
    config = dict(model.config, arch=ARCH, weights_file=os.path.basename(wpath), weights_sha256=sha256_file(wpath))
    with atomic_open(cpath) as f:
        f.write(json.dumps(config, indent=1, ensure_ascii=False).encode())
    return config


def load_glyph_classifier(path, device='cpu'):
    """Load a classifier from '<name>.pt' or '<name>.json' -> GlyphClassifier in eval mode."""
    wpath, cpath = _paths(path)
    with open(cpath, encoding='utf-8') as f:
        config = json.load(f)
    if config.get('arch') != ARCH:
        raise ValueError(f'{cpath}: unsupported arch {config.get("arch")!r} (expected {ARCH})')
    if config.get('weights_sha256') not in (None, sha256_file(wpath)):
        raise ValueError(f'{wpath}: sha256 does not match {cpath}')
    model = GlyphClassifier(config)
    model.net.load_state_dict(torch.load(wpath, map_location='cpu', weights_only=True))
    return model.to(device).eval()


def load_dataset_zip(path, limit=None):
    """Read a stylegan2-ada dataset zip -> (uint8 images [N, C, H, W], int64 labels [N]).

    Order follows dataset.json; labels are -1 where the zip has none.
    """
    from training.dataset import read_dataset_arrays
    images, labels = read_dataset_arrays(path, limit=limit)
    return torch.from_numpy(images), torch.from_numpy(labels)


def fgd_between(model, images_a, images_b):
    """FGD between two image sets [N, C, R, R] (uint8 or [-1, 1] float) under model: the FID formula
    (metrics.frechet) on the classifier's features."""
    return fid_from_features(model.features(images_a).numpy(), model.features(images_b).numpy())
