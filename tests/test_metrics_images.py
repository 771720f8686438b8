"""ImageSet: recursive folders, zips, extensions, colour conversion, limits and content hashes."""

import io
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


def test_exif_orientation_and_corrupt_files_as_in_training(tmp_path):
    """ImageSet decodes as the training targets do: upright by EXIF, a corrupt file named in the error."""
    from training.dataset import DataError
    img = PIL.Image.fromarray(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    img.save(tmp_path / 'photo.png', exif=exif)
    (tmp_path / 'z_broken.png').write_bytes(b'\x89PNG not really')
    s = ImageSet(tmp_path)
    assert s.read(0).shape == (3, 2, 3)
    np.testing.assert_array_equal(s.read(0), np.asarray(img.transpose(PIL.Image.Transpose.ROTATE_270)))
    with pytest.raises(DataError, match='z_broken.png: cannot be read as an image'):
        s.read(1)


def test_dataset_arrays_follow_dataset_json(tmp_path):
    """read_dataset_arrays: dataset.json's order and labels; sorted names and -1 without it; grey stays 1 channel."""
    import json
    from training.dataset import read_dataset_arrays
    with zipfile.ZipFile(tmp_path / 'd.zip', 'w') as z:
        for i, value in enumerate((30, 60, 90)):
            buf = io.BytesIO()
            PIL.Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, format='PNG')
            z.writestr(f'img{i}.png', buf.getvalue())
        z.writestr('dataset.json', json.dumps({'labels': [['img2.png', 5], ['img0.png', 7]]}))
    images, labels = read_dataset_arrays(tmp_path / 'd.zip')
    assert images.shape == (2, 1, 4, 4) and images.dtype == np.uint8
    assert images[:, 0, 0, 0].tolist() == [90, 30] and labels.tolist() == [5, 7]
    folder = tmp_path / 'f'
    folder.mkdir()
    for name, value in (('b.png', 20), ('a.png', 10)):
        PIL.Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(folder / name)
    images, labels = read_dataset_arrays(folder, limit=1)
    assert images.shape == (1, 3, 4, 4) and images[0, :, 0, 0].tolist() == [10, 10, 10] and labels.tolist() == [-1]
