"""ImageSet: recursive folders, zips, extensions, colour conversion, limits and content hashes."""

import zipfile

import numpy as np
import PIL.Image
import pytest

from metrics.images import ImageSet, downsample_area, save_grid


def _tree(root):
    (root / 'a' / 'b').mkdir(parents=True)
    PIL.Image.fromarray(np.full((4, 5, 3), 10, np.uint8)).save(root / 'z.png')
    PIL.Image.fromarray(np.full((4, 5), 99, np.uint8)).save(root / 'a' / 'grey.JPG', quality=100)
    PIL.Image.fromarray(np.full((6, 6, 4), 50, np.uint8)).save(root / 'a' / 'b' / 'rgba.webp', lossless=True)
    PIL.Image.fromarray(np.full((3, 3, 3), 7, np.uint8)).save(root / 'a' / 'b' / 'c.bmp')
    (root / 'notes.txt').write_text('not an image')
    return root


def test_folder_is_read_recursively_sorted_and_as_rgb(tmp_path):
    s = ImageSet(_tree(tmp_path))
    assert s.names == ['a/b/c.bmp', 'a/b/rgba.webp', 'a/grey.JPG', 'z.png']
    imgs = list(s)
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in imgs)
    assert np.all(imgs[1] == 50) and abs(int(imgs[2][0, 0, 0]) - 99) <= 1 and np.all(imgs[3] == 10)
    assert [len(b) for b in s.batches(3)] == [3, 1]
    assert len(ImageSet(tmp_path, limit=2)) == 2


def test_zip_matches_folder_and_hash_tracks_content(tmp_path):
    folder = _tree(tmp_path / 'f')
    with zipfile.ZipFile(tmp_path / 'f.zip', 'w') as z:
        for path in sorted(folder.rglob('*')):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    zs, fs = ImageSet(tmp_path / 'f.zip'), ImageSet(folder)
    assert zs.names == fs.names
    assert all(np.array_equal(a, b) for a, b in zip(zs, fs))
    assert zs.content_hash() == fs.content_hash()
    h = fs.content_hash()
    PIL.Image.fromarray(np.full((4, 5, 3), 11, np.uint8)).save(folder / 'z.png')
    assert ImageSet(folder).content_hash() != h


def test_errors_for_missing_or_empty(tmp_path):
    with pytest.raises(ValueError, match='neither'):
        ImageSet(tmp_path / 'missing')
    with pytest.raises(ValueError, match='no image'):
        ImageSet(tmp_path)


def test_downsample_area_and_grid(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 255
    small = downsample_area([img], 2)
    np.testing.assert_allclose(small[0, :, 0, 0], 1.0)
    np.testing.assert_allclose(small[0, :, 1, 1], 0.0)
    save_grid([[img, img], [img]], tmp_path / 'g.png', cell=16, captions=['a', 'b'], title='t')
    with PIL.Image.open(tmp_path / 'g.png') as g:
        assert g.size[0] == 2 * (16 + 4) + 4
