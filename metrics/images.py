"""Image sets read from a folder (recursively) or a zip archive, plus small image helpers.

Every image is returned as an H x W x 3 uint8 RGB array, upright by its EXIF orientation: grey images are
replicated to three channels, an alpha channel is dropped, palette images are expanded (PIL `convert('RGB')`).
"""

import hashlib
import os

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
import torch.nn.functional as F

from metrics.util import atomic_open
from training.dataset import IMAGE_EXTENSIONS, DataError, ImageSource, decode_image


class ImageSet:
    """The images under `path` (a folder, searched recursively, or a .zip file), sorted by relative path.

    Listing and decoding are training.dataset.ImageSource's (EXIF orientation applied, a corrupt file named
    in the DataError). `limit` keeps only the first `limit` images of that order. Raises ValueError when
    `path` is neither a folder nor a zip archive or holds no image with one of IMAGE_EXTENSIONS (any case).
    """

    def __init__(self, path, limit=None):
        self.path = os.fspath(path)
        try:
            self._source = ImageSource(self.path)
        except DataError:
            raise ValueError(f'{self.path!r} is neither a folder nor a zip archive') from None
        self.is_zip = self._source.is_zip
        names = self._source.names[:limit]
        if not names:
            raise ValueError(f'{self.path!r} holds no image ({", ".join(IMAGE_EXTENSIONS)})')
        self.names = names
        self._hash = None

    def __len__(self):
        return len(self.names)

    def read_bytes(self, i):
        """Raw file contents of image `i`."""
        return self._source.read(self.names[i])

    def read(self, i):
        """Image `i` as an [H, W, 3] uint8 RGB array (upright by its EXIF orientation). DataError naming the set's
        path and the file when it cannot be decoded."""
        try:
            image = decode_image(self.read_bytes(i), self.names[i])
        except DataError as e:
            raise DataError(f'{self.path}: {e}; remove or fix it') from None
        return np.asarray(image.convert('RGB'), dtype=np.uint8)

    def __iter__(self):
        for i in range(len(self)):
            yield self.read(i)

    def batches(self, batch_size):
        """Yield lists of at most `batch_size` [H, W, 3] uint8 arrays, in order."""
        for start in range(0, len(self), batch_size):
            yield [self.read(i) for i in range(start, min(start + batch_size, len(self)))]

    def content_hash(self):
        """Hex sha256 over the (relative name, sha256 of bytes) pairs of the selected images, in order."""
        if self._hash is None:
            h = hashlib.sha256()
            for i, name in enumerate(self.names):
                h.update(name.encode('utf-8') + b'\0')
                h.update(hashlib.sha256(self.read_bytes(i)).digest())
            self._hash = h.hexdigest()
        return self._hash


def to_float_nchw(images):
    """List of [H, W, 3] uint8 arrays of one size -> float32 tensor [N, 3, H, W], values 0..255."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(torch.float32)


def downsample_area(images, size):
    """List of [H, W, 3] uint8 arrays -> float32 array [N, 3, size, size] in [0, 1].

    Each image is resized on its own with area averaging (torch `interpolate(mode='area')`, i.e. adaptive
    average pooling; a pure box filter when the size divides evenly).
    """
    out = [F.interpolate(to_float_nchw([im]), size=(size, size), mode='area') for im in images]
    return (torch.cat(out) / 255.0).numpy()


def save_grid(rows, path, cell=128, captions=None, title=None, pad=4):
    """Save rows of images as one PNG grid, written atomically.

    rows: list of rows, each a list of [H, W, 3] uint8 arrays (every image is resized to cell x cell pixels);
    captions: optional list (one per row) of strings drawn under the row; title: optional top line.
    """
    n_cols = max(len(r) for r in rows)
    text_h = 14 if captions else 0
    top = 16 if title else 0
    row_h = cell + text_h + pad
    canvas = PIL.Image.new('RGB', (n_cols * (cell + pad) + pad, top + len(rows) * row_h + pad), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 3), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        y = top + pad + r * row_h
        for c, im in enumerate(row):
            tile = PIL.Image.fromarray(im).resize((cell, cell), PIL.Image.BILINEAR)
            canvas.paste(tile, (pad + c * (cell + pad), y))
        if captions:
            draw.text((pad, y + cell + 1), captions[r], fill=(0, 0, 0))
    with atomic_open(path, 'wb') as f:
        canvas.save(f, format='PNG')
