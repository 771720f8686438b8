"""Target images for few-shot adaptation: read, select the shots, convert to the network's format.

Conversion policy (applied to every image, each change logged):
  * orientation: an EXIF orientation tag (phone photos) is applied first, as viewers show the image;
  * mode: 16-bit, CMYK, palette and alpha images become 8-bit RGB (alpha is dropped);
    then RGB -> 'L' (luma) for 1-channel networks, or grayscale -> RGB for 3-channel ones;
  * shape: centre-crop to a square (the shorter side), then Lanczos resize to R x R;
    images smaller than R are upsampled (with a warning).
Sources: a folder (searched recursively) or a zip, with files ending in .png .jpg .jpeg .webp .bmp.
"""
import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import List

import numpy as np
import PIL.Image
import PIL.ImageOps

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')
META_FILES = ('dataset.json', 'meta.json')   # dataset metadata, not images
EXIF_ORIENTATION = 0x0112                     # EXIF tag: 1 = upright, 2-8 = mirrored and/or rotated


class DataError(Exception):
    """A user-facing problem with the target images (the message says what to do)."""


@dataclass
class TargetImages:
    """Selected shots as uint8 [N, C, R, R] plus provenance."""
    images: np.ndarray
    files: List[str]
    sha256: List[str]
    notes: List[str] = field(default_factory=list)    # one line per converted image
    labels: np.ndarray = None                         # [N] int64 or None

    def record(self):
        """JSON-able description of the selection (for the run folder)."""
        return dict(files=self.files, sha256=self.sha256, notes=self.notes,
                    shape=list(self.images.shape),
                    labels=None if self.labels is None else self.labels.tolist())


def _list_source(path):
    """Sorted image names in a folder or zip, and a reader name -> bytes; labels if dataset.json exists."""
    if not os.path.exists(path):
        raise DataError(f'--target-dir {path}: no such file or folder; give a folder or zip of images')
    if os.path.isdir(path):
        names = []
        for root, _dirs, files in os.walk(path):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), path).replace(os.sep, '/')
                names.append(rel)

        def read(name):
            with open(os.path.join(path, name), 'rb') as fh:
                return fh.read()
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)  # kept open for the reads; closed when garbage-collected
        names = [n for n in archive.namelist() if not n.endswith('/')]

        def read(name):
            return archive.read(name)
    else:
        raise DataError(f'--target-dir {path}: not a folder or a zip file; give a folder or zip of images')
    labels = None
    if 'dataset.json' in names:
        try:
            meta = json.loads(read('dataset.json'))
            if meta.get('labels') is not None:
                labels = {str(k): int(v) for k, v in meta['labels']}
        except (ValueError, TypeError) as e:
            raise DataError(f'{path}: dataset.json is not valid ({e}); fix or remove it') from None
    images = sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
    skipped = sorted(n for n in names if not n.lower().endswith(IMAGE_EXTENSIONS) and n not in META_FILES)
    return images, read, labels, skipped


def _to_array(data, name, resolution, channels, notes):
    """Decode and convert one image to uint8 [C, R, R] by the module's policy."""
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
    except PIL.UnidentifiedImageError:
        raise DataError(f'{name}: cannot be read as an image (not a format PIL recognises)') from None
    except Exception as e:  # PIL raises many types for corrupt data
        reason = re.sub(r'\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>', '', str(e))  # the file is named instead
        raise DataError(f'{name}: cannot be read as an image ({type(e).__name__}: {reason})') from None
    changes = []
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    if orientation in range(2, 9):
        img = PIL.ImageOps.exif_transpose(img)
        changes.append(f'EXIF orientation {orientation} applied')
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = PIL.Image.fromarray(np.clip(np.round(arr / top * 255), 0, 255).astype(np.uint8), 'L')
        changes.append('16-bit -> 8-bit')
    if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'P' and 'transparency' in img.info):
        changes.append('alpha dropped')
    if img.mode not in ('L', 'RGB'):
        changes.append(f'{img.mode} -> RGB')
        img = img.convert('RGB')
    if channels == 1 and img.mode != 'L':
        img = img.convert('L')
        changes.append('RGB -> grayscale')
    elif channels == 3 and img.mode != 'RGB':
        img = img.convert('RGB')
        changes.append('grayscale -> RGB')
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
        changes.append(f'centre-cropped {w}x{h} -> {s}x{s}')
    if img.size[0] != resolution:
        if img.size[0] < resolution:
            changes.append(f'WARNING upsampled {img.size[0]} -> {resolution}')
        else:
            changes.append(f'resized {img.size[0]} -> {resolution}')
        img = img.resize((resolution, resolution), PIL.Image.LANCZOS)
    if changes:
        notes.append(f'{name}: ' + ', '.join(changes))
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[np.newaxis] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr)


def load_target(path, resolution, channels, shots=None, seed=0):
    """Read `path`, pick `shots` images (all if None) deterministically from `seed`, convert them.

    Returns TargetImages with images uint8 [N, channels, resolution, resolution].
    Raises DataError naming every unreadable file, or when there are fewer images than shots.
    """
    if channels not in (1, 3):
        raise DataError(f'network has {channels} image channels; only 1 and 3 are supported')
    names, read, labels, skipped = _list_source(path)
    if not names:
        raise DataError(f'--target-dir {path}: contains no images ({", ".join(IMAGE_EXTENSIONS)})')
    notes = []
    if skipped:
        shown = ', '.join(skipped[:10]) + (f' and {len(skipped) - 10} more' if len(skipped) > 10 else '')
        notes.append(f'skipped {len(skipped)} file(s) that are not images by extension: {shown}')
    if shots is not None:
        if shots < 1:
            raise DataError(f'--shots must be >= 1, got {shots}')
        if len(names) < shots:
            raise DataError(f'--target-dir {path}: has {len(names)} image{"s" if len(names) != 1 else ""}, '
                            f'fewer than --shots {shots}; add images or lower --shots')
        order = np.random.RandomState(seed).permutation(len(names))[:shots]
        names = [names[i] for i in sorted(order)]
    arrays, hashes, bad = [], [], []
    for name in names:
        try:
            data = read(name)
        except OSError as e:
            bad.append(f'{name}: cannot be opened ({e.strerror or e})')
            continue
        try:
            arrays.append(_to_array(data, name, resolution, channels, notes))
            hashes.append(hashlib.sha256(data).hexdigest())
        except DataError as e:
            bad.append(str(e))
    if bad:
        raise DataError(f'{len(bad)} unreadable image(s) in {path}: ' + '; '.join(bad) + '; remove or fix them')
    label_arr = None
    if labels is not None:
        missing = [n for n in names if n not in labels]
        if missing:
            raise DataError(f'{path}: dataset.json has no label for {", ".join(missing[:5])}')
        label_arr = np.array([labels[n] for n in names], dtype=np.int64)
    return TargetImages(images=np.stack(arrays), files=names, sha256=hashes, notes=notes, labels=label_arr)
