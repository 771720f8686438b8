"""Target images for few-shot adaptation: read, select the shots, convert to the network's format.

Conversion policy (applied to every image, each change logged):
  * orientation: an EXIF orientation tag (phone photos) is applied first, as viewers show the image;
  * mode: 16-bit, CMYK, palette and alpha images become 8-bit RGB (alpha is dropped);
    then RGB -> 'L' (luma) for 1-channel networks, or grayscale -> RGB for 3-channel ones;
  * shape: centre-crop to a square (the shorter side), then Lanczos resize to R x R;
    images smaller than R are upsampled (with a warning).
Sources: a folder (searched recursively) or a zip, with files ending in .png .jpg .jpeg .webp .bmp
(ImageSource: the reader of image folders and zips that metrics.images and the glyph classifier use too).
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


def _macos_metadata(name):
    """True for the files macOS adds beside images (zip's __MACOSX/ folder, AppleDouble '._*' files): not images."""
    return name.startswith('__MACOSX/') or '/__MACOSX/' in name or name.rsplit('/', 1)[-1].startswith('._')


class ImageSource:
    """The image files of a folder (searched recursively) or a zip archive: the one reader of image sets.

    names: the image files (extension in IMAGE_EXTENSIONS, any case), relative '/'-separated paths, sorted;
    skipped: the other files, except META_FILES. Raises DataError naming `path` when it does not exist or is
    neither a folder nor a zip archive. A zip stays open for the reads (closed when garbage-collected).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._zip = None
        if not os.path.exists(self.path):
            raise DataError(f'{self.path}: no such file or folder; give a folder or zip of images')
        if os.path.isdir(self.path):
            files = []
            for root, _dirs, names in os.walk(self.path):
                files += [os.path.relpath(os.path.join(root, f), self.path).replace(os.sep, '/') for f in names]
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            files = [n for n in self._zip.namelist() if not n.endswith('/')]
        else:
            raise DataError(f'{self.path}: not a folder or a zip file; give a folder or zip of images')
        self.is_zip = self._zip is not None
        self._files = set(files)
        self.names = sorted(n for n in files if n.lower().endswith(IMAGE_EXTENSIONS) and not _macos_metadata(n))
        self.skipped = sorted(n for n in files if n not in self.names and n not in META_FILES)

    def read(self, name):
        """Raw bytes of file `name` (OSError when it cannot be read)."""
        if self._zip is not None:
            return self._zip.read(name)
        with open(os.path.join(self.path, name), 'rb') as fh:
            return fh.read()

    def image(self, name, changes=None):
        """File `name` decoded, upright (see decode_image); DataError naming it when it is not an image."""
        return decode_image(self.read(name), name, changes)

    def label_entries(self):
        """dataset.json's "labels" list of [name, label or None] as stored, or None without one."""
        if 'dataset.json' not in self._files:
            return None
        try:
            entries = json.loads(self.read('dataset.json')).get('labels')
            return None if entries is None else [[str(name), label] for name, label in entries]
        except (ValueError, TypeError, AttributeError) as e:
            raise DataError(f'{self.path}: dataset.json is not valid ({e}); fix or remove it') from None

    def labels(self):
        """{name: int label} from dataset.json, or None without labels; DataError when one is not an integer."""
        entries = self.label_entries()
        try:
            return None if entries is None else {name: int(label) for name, label in entries}
        except (ValueError, TypeError) as e:
            raise DataError(f'{self.path}: dataset.json is not valid ({e}); fix or remove it') from None


def decode_image(data, name, changes=None):
    """Image file bytes -> loaded PIL image, turned upright by its EXIF orientation tag (as viewers show it).

    changes: a list that gets 'EXIF orientation N applied' when the tag turned the image. Raises DataError
    naming `name` when the bytes are not an image PIL can read.
    """
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
    except PIL.UnidentifiedImageError:
        raise DataError(f'{name}: cannot be read as an image (not a format PIL recognises)') from None
    except Exception as e:  # PIL raises many types for corrupt data
        reason = re.sub(r'\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>', '', str(e))  # the file is named instead
        raise DataError(f'{name}: cannot be read as an image ({type(e).__name__}: {reason})') from None
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    if orientation in range(2, 9):
        img = PIL.ImageOps.exif_transpose(img)
        if changes is not None:
            changes.append(f'EXIF orientation {orientation} applied')
    return img


def read_dataset_arrays(path, limit=None):
    """A stylegan2-ada dataset (zip or folder) as stored: (uint8 images [N, C, H, W], int64 labels [N]).

    Order: dataset.json's "labels" list when it has one, else the sorted image names; `limit` keeps the
    first ones. C is 1 for grayscale ('L') files and 3 otherwise (converted to RGB); labels are -1 where
    the dataset has none. Raises DataError naming the dataset or the file that is missing or unreadable.
    """
    source = ImageSource(path)
    entries = source.label_entries()
    if entries is None:
        entries = [[name, None] for name in source.names]
    entries = entries[:limit]
    if not entries:
        raise DataError(f'{path}: no images')
    arrays = []
    for name, _label in entries:
        try:
            img = source.image(name)
        except (OSError, KeyError) as e:
            raise DataError(f'{path}: {name} cannot be opened ({e})') from None
        arr = np.asarray(img if img.mode == 'L' else img.convert('RGB'), dtype=np.uint8)
        arrays.append(arr[:, :, None] if arr.ndim == 2 else arr)
    labels = np.array([-1 if label is None else int(label) for _name, label in entries], dtype=np.int64)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)), labels


def _to_array(data, name, resolution, channels, notes):
    """Decode and convert one image to uint8 [C, R, R] by the module's policy."""
    changes = []
    img = decode_image(data, name, changes)
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I'):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit modes span 0..65535 whatever their content; a 32-bit 'I' image holding 8-bit values keeps them
        top = 65535.0 if img.mode.startswith('I;16') or arr.max() > 255 else 255.0
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
    try:
        source = ImageSource(path)
    except DataError as e:
        raise DataError(f'--target-dir {e}') from None
    labels = source.labels()
    names, skipped = source.names, source.skipped
    if not names:
        raise DataError(f'--target-dir {path}: contains no images ({", ".join(IMAGE_EXTENSIONS)})')
    notes = []
    if skipped:
        shown = ', '.join(skipped[:10]) + (f' and {len(skipped) - 10} more' if len(skipped) > 10 else '')
        notes.append(f'skipped {len(skipped)} file(s) that are not images (by extension, or macOS metadata): {shown}')
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
            data = source.read(name)
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
