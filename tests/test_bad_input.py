"""Bad input: every case ends in a one-line error (or a logged conversion), never a traceback."""
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from tests.conftest import ROOT
from training.dataset import DataError, load_target


def _save(path, array, mode=None):
    img = PIL.Image.fromarray(array, mode) if mode else PIL.Image.fromarray(array)
    img.save(path)
    return path


@pytest.fixture
def odd_images(tmp_path):
    """One image of each awkward kind, plus a non-image file."""
    rng = np.random.RandomState(0)
    d = tmp_path / 'odd'
    d.mkdir()
    _save(d / 'rgb.png', (rng.rand(32, 32, 3) * 255).astype(np.uint8))
    PIL.Image.fromarray((rng.rand(40, 40) * 65535).astype(np.uint16)).save(d / 'sixteen.png')
    PIL.Image.fromarray((rng.rand(32, 32, 3) * 255).astype(np.uint8)).convert('CMYK').save(d / 'cmyk.jpg')
    PIL.Image.fromarray((rng.rand(32, 32, 3) * 255).astype(np.uint8)).convert('P').save(d / 'palette.png')
    _save(d / 'alpha.png', (rng.rand(32, 32, 4) * 255).astype(np.uint8), 'RGBA')
    _save(d / 'small.png', (rng.rand(8, 8, 3) * 255).astype(np.uint8))
    _save(d / 'gray.bmp', (rng.rand(32, 48) * 255).astype(np.uint8), 'L')
    (d / 'notes.txt').write_text('not an image')
    return d


def test_awkward_images_are_converted_with_notes(odd_images):
    t = load_target(str(odd_images), 32, 3)
    assert t.images.shape == (7, 3, 32, 32) and t.images.dtype == np.uint8
    notes = ' | '.join(t.notes)
    for expected in ('sixteen.png: 16-bit -> 8-bit', 'cmyk.jpg: CMYK -> RGB', 'palette.png: P -> RGB',
                     'alpha.png: alpha dropped', 'small.png: WARNING upsampled 8 -> 32',
                     'gray.bmp: grayscale -> RGB, centre-cropped 48x32 -> 32x32'):
        assert expected in notes, (expected, notes)
    assert 'notes.txt' not in t.files
    gray = load_target(str(odd_images), 32, 1)
    assert gray.images.shape == (7, 1, 32, 32)
    assert any('rgb.png: RGB -> grayscale' in n for n in gray.notes)


def test_sixteen_bit_scaled_not_clipped(tmp_path):
    arr = np.full((32, 32), 65535, dtype=np.uint16)
    arr[:16] = 32768
    PIL.Image.fromarray(arr).save(tmp_path / 'a.png')
    img = load_target(str(tmp_path), 32, 1).images[0, 0]
    assert img[0, 0] == 128 and img[-1, -1] == 255


def test_a_dark_sixteen_bit_image_stays_dark(tmp_path):
    """Values up to 200 of 65535 are nearly black, not the 8-bit greys 0..200."""
    arr = np.tile(np.linspace(0, 200, 32).astype(np.uint16), (32, 1))
    PIL.Image.fromarray(arr).save(tmp_path / 'dark.png')
    img = load_target(str(tmp_path), 32, 1).images[0, 0]
    assert img.max() <= 1


def test_macos_metadata_in_a_zip_is_skipped(tmp_path):
    import io
    import zipfile
    buf = io.BytesIO()
    PIL.Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, format='PNG')
    with zipfile.ZipFile(tmp_path / 'shots.zip', 'w') as z:
        for i in range(2):
            z.writestr(f'shots/img{i}.png', buf.getvalue())
            z.writestr(f'__MACOSX/shots/._img{i}.png', b'\x00\x05\x16\x07 AppleDouble')
        z.writestr('shots/._img0.png', b'\x00\x05\x16\x07')
    t = load_target(str(tmp_path / 'shots.zip'), 32, 3)
    assert t.files == ['shots/img0.png', 'shots/img1.png']
    assert any('skipped 3 file(s)' in n and 'macOS' in n for n in t.notes), t.notes


@pytest.mark.parametrize('make, message', [
    (lambda p: p / 'empty', 'contains no images'),
    (lambda p: p / 'missing', 'no such file or folder'),
    (lambda p: p / 'notzip.dat', 'not a folder or a zip'),
    (lambda p: p / 'truncated', 'truncated.png: cannot be read'),
])
def test_target_errors(tmp_path, make, message):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'notzip.dat').write_bytes(b'abc')
    (tmp_path / 'truncated').mkdir()
    good = tmp_path / 'truncated' / 'truncated.png'
    _save(good, np.zeros((32, 32, 3), np.uint8))
    good.write_bytes(good.read_bytes()[:40])
    with pytest.raises(DataError, match=message):
        load_target(str(make(tmp_path)), 32, 3)


def _cli(script, *args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', script)] + list(args),
                          capture_output=True, text=True, cwd=ROOT)
    return proc.returncode, proc.stderr


@pytest.mark.slow
def test_cli_network_errors(tmp_path, target_dir, p1_path):
    (tmp_path / 'text.pkl').write_text('hello')
    (tmp_path / 'trunc.pkl').write_bytes(open(p1_path, 'rb').read()[:5000])
    for bad in ('text.pkl', 'trunc.pkl'):
        path = str(tmp_path / bad)
        for script, args in (('train.py', ['--resume', path, '--target-dir', target_dir, '--outdir', str(tmp_path)]),
                             ('generate.py', ['--network', path, '--outdir', str(tmp_path / 'g')])):
            rc, err = _cli(script, *args)
            assert rc != 0 and 'Traceback' not in err and bad in err, (script, err)
            assert len(err.strip().splitlines()) == 1, err


def test_unwritable_outdir(tmp_path, target_dir, p1_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    rc, err = _cli('train.py', '--resume', p1_path, '--target-dir', target_dir, '--shots', '3',
                   '--outdir', str(blocker / 'runs'), '--kimg', '0.004', '--no-progress')
    assert rc != 0 and 'Traceback' not in err and 'outdir' in err
    rc, err = _cli('generate.py', '--network', p1_path, '--outdir', str(blocker / 'out'))
    assert rc != 0 and 'Traceback' not in err and '--outdir' in err


def test_adapter_for_other_source_cli(tmp_path, p1_path, p2_path):
    import copy
    from fsgan import load_network
    from fsgan.export import save_adapter
    from fsgan.methods import adapt
    net = load_network(p1_path)
    G, D = copy.deepcopy(net['G_ema']), copy.deepcopy(net['D'])
    adapt(G, D, method='fsgan')
    save_adapter(str(tmp_path / 'a.pt'), 'fsgan', {}, net['sha256'], G, D, G)
    rc, err = _cli('generate.py', '--network', p2_path, '--adapter', str(tmp_path / 'a.pt'), '--outdir',
                   str(tmp_path / 'g'), '--class', '0')
    assert rc != 0 and 'made for source network' in err and 'Traceback' not in err


def test_non_image_files_are_reported(odd_images):
    t = load_target(str(odd_images), 32, 3)
    assert any('skipped 1 file(s)' in n and 'notes.txt' in n for n in t.notes)


def test_unreadable_file_is_listed(odd_images, monkeypatch):
    import builtins
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path).endswith('rgb.png'):
            raise PermissionError(13, 'Permission denied', str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(builtins, 'open', guarded)
    with pytest.raises(DataError, match='rgb.png: cannot be opened .Permission denied'):
        load_target(str(odd_images), 32, 3)


def test_cfg_with_resume_is_refused(tmp_path, target_dir, p1_path):
    """--cfg only shapes a run from scratch; with --resume it would be ignored without a word."""
    rc, err = _cli('train.py', '--resume', p1_path, '--target-dir', target_dir, '--outdir', str(tmp_path / 'runs'),
                   '--cfg', 'small64', '--no-progress')
    assert rc != 0 and len(err.strip().splitlines()) == 1 and '--cfg small64' in err and '--resume' in err, err
    assert not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('option,value', [('--gamma', 'nan'), ('--pl-weight', 'inf'), ('--lr', 'nan'),
                                          ('--style-mixing', 'nan')])
def test_non_finite_training_options(tmp_path, target_dir, p1_path, option, value):
    rc, err = _cli('train.py', '--resume', p1_path, '--target-dir', target_dir, '--outdir', str(tmp_path / 'runs'),
                   '--kimg', '0.004', '--no-progress', option, value)
    assert rc != 0 and 'Traceback' not in err and option in err and 'finite' in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / 'runs').exists()


def test_exif_orientation_is_applied_and_recorded(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 is turned upright before the centre crop."""
    upright = np.zeros((48, 32, 3), np.uint8)       # portrait: 32 wide, 48 high
    upright[:16] = 255                                # white top third: only the upright crop starts white
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # what the camera wrote: 48 wide, 32 high
    img = PIL.Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6                                  # display rotated 90 degrees clockwise
    img.save(tmp_path / 'phone.jpg', exif=exif, quality=95)
    t = load_target(str(tmp_path), 32, 3)
    assert t.images.shape == (1, 3, 32, 32)
    assert t.images[0, :, :8].mean() > 200 and t.images[0, :, -8:].mean() < 50   # top white, bottom black
    assert any('phone.jpg: EXIF orientation 6 applied' in n for n in t.notes), t.notes
    assert any('EXIF orientation 6' in n for n in t.record()['notes'])            # target_shots.json


def test_unrecognised_image_names_the_file_and_reason_only(tmp_path):
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG not really')
    with pytest.raises(DataError) as info:
        load_target(str(tmp_path), 32, 3)
    message = str(info.value)
    assert 'broken.png: cannot be read as an image' in message
    assert 'BytesIO' not in message and '0x' not in message, message


def test_one_image_is_not_called_images(tmp_path):
    _save(tmp_path / 'only.png', np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(DataError, match='has 1 image, fewer than --shots 2'):
        load_target(str(tmp_path), 32, 3, shots=2)


def test_a_directory_as_network_says_so(tmp_path):
    from fsgan.loading import NetworkLoadError, load_network
    with pytest.raises(NetworkLoadError, match='is a directory, not a network pickle'):
        load_network(str(tmp_path))
