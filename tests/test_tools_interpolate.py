"""scripts/interpolate.py and fsgan.tools.interp: paths, frames, loop closure, mp4/gif files, errors."""
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fsgan.tools import interp
from scripts import interpolate as cli
from fsgan.sampling import generate_images, load_generator


@pytest.fixture(scope='module')
def G(p1_path, one_thread):
    return load_generator(p1_path)[0]


def _run(args):
    return CliRunner().invoke(cli.main, args + ['--no-progress'])


def test_slerp_endpoints_and_angle():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    out = interp.slerp(a, b, t)
    assert torch.equal(out[0], a)
    assert torch.allclose(out[3], b, atol=1e-5)
    # On the unit sphere: stays on it, and the angle from a grows linearly with t.
    a, b = a.double() / a.double().norm(), b.double() / b.double().norm()
    out = interp.slerp(a, b, t)
    assert torch.allclose(out.norm(dim=1), torch.ones(4, dtype=torch.float64), atol=1e-9)
    angle = torch.arccos((out @ a).clamp(-1, 1))
    assert torch.allclose(angle, t.double() * angle[3], atol=1e-6)
    assert torch.equal(interp.slerp(a, a, t)[1], a)  # parallel: lerp fallback


@pytest.mark.parametrize('space', ['z', 'w'])
def test_loop_frames_start_at_seed_and_close(G, space):
    seeds, fpt = [1, 5, 9], 4
    ws = interp.loop_ws(G, seeds, fpt, space=space, trunc=0.8)
    assert ws.shape == (len(seeds) * fpt, G.num_ws, G.w_dim)
    frames = interp.render(G, ws)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8
    ref = generate_images(G, seeds, trunc=0.8)
    for i in range(len(seeds)):  # every key frame is generate.py's image of that seed (batched rounding: <= 1)
        assert np.abs(frames[i * fpt].astype(int) - ref[i].astype(int)).max() <= 1
    # Loop closes: the step last -> first is an ordinary step of the path, not a jump, and it
    # shrinks when the transitions get more frames.
    steps = (ws.roll(-1, dims=0) - ws).flatten(1).norm(dim=1)
    assert steps[-1] <= 1.5 * steps[:-1].max()
    fine = interp.loop_ws(G, seeds, 4 * fpt, space=space, trunc=0.8)
    assert (fine[0] - fine[-1]).norm() < 0.5 * steps[-1]


def test_same_seed_same_image_other_seed_differs(G):
    a = interp.render(G, interp.loop_ws(G, [3, 4], 1))
    b = interp.render(G, interp.loop_ws(G, [3, 4], 1))
    assert np.array_equal(a, b)
    assert np.abs(a[0].astype(int) - a[1].astype(int)).mean() > 1
    assert np.array_equal(generate_images(G, [3, 3]), generate_images(G, [3, 3]))


def test_cli_mp4_roundtrip(p1_path, tmp_path):
    out = tmp_path / 'video.mp4'
    res = _run(['--network', p1_path, '--seeds', '1,5,9', '--frames-per-transition', '4', '--out', str(out),
                '--upscale', '2'])
    assert res.exit_code == 0, res.output
    video = iio.imread(out)
    assert video.shape == (12, 64, 64, 3)
    G = load_generator(p1_path)[0]
    first = generate_images(G, [1], trunc=0.8)[0].repeat(2, 0).repeat(2, 1)
    assert np.abs(video[0].astype(float) - first).mean() < 12  # lossy codec, same picture
    assert [n for n in os.listdir(tmp_path) if n != 'video.mp4'] == []  # no temp files left
    from dnnlib.fileio import NEW_FILE_MODE
    assert os.stat(out).st_mode & 0o777 == NEW_FILE_MODE  # not the temp file's 0600


def test_failed_video_leaves_earlier_file_and_no_temp(tmp_path):
    from fsgan.tools.interp import write_video
    out = tmp_path / 'v.mp4'
    out.write_bytes(b'earlier')

    def frames():
        yield np.zeros([16, 16, 3], np.uint8)
        raise RuntimeError('generator failed')
    with pytest.raises(RuntimeError, match='generator failed'):
        write_video(frames(), str(out))
    assert out.read_bytes() == b'earlier' and os.listdir(tmp_path) == ['v.mp4']
    with pytest.raises(ValueError, match='no frames'):
        write_video(iter([]), str(out))
    assert out.read_bytes() == b'earlier' and os.listdir(tmp_path) == ['v.mp4']


def test_cli_grid_and_gif(p1_path, tmp_path):
    out = tmp_path / 'grid.mp4'
    res = _run(['--network', p1_path, '--seeds', '0-7', '--grid', '2x2', '--frames-per-transition', '3',
                '--space', 'w', '--out', str(out), '--gif'])
    assert res.exit_code == 0, res.output
    assert iio.imread(out).shape == (6, 64, 64, 3)
    gif = iio.imread(tmp_path / 'grid.gif')
    assert gif.shape[:3] == (6, 64, 64)
    res = _run(['--network', p1_path, '--seeds', '0-5', '--num-interps', '3', '--frames-per-transition', '2',
                '--out', str(tmp_path / 'row.gif')])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / 'row.gif').shape[:3] == (4, 64, 64)  # 3 cells -> 2x2 grid, one empty


@pytest.mark.parametrize('args, message', [
    (['--seeds', '0-6', '--grid', '2x2'], 'cannot be split evenly into 4 cells'),
    (['--seeds', '0-3', '--grid', '2by2'], 'expected ROWSxCOLS'),
    (['--seeds', '0-3', '--grid', '1x2', '--num-interps', '2'], 'not both'),
    (['--seeds', '4'], 'at least 2 seeds'),
    (['--seeds', '0-3', '--out-ext', 'avi'], 'must end in .mp4 or .gif'),
    (['--seeds', '0-x'], 'is not a seed or a range'),
])
def test_bad_arguments_one_line_error(p1_path, tmp_path, args, message):
    out = str(tmp_path / ('v.avi' if '--out-ext' in args else 'v.mp4'))
    args = [a for a in args if a not in ('--out-ext', 'avi')]
    res = _run(['--network', p1_path, '--out', out] + args)
    assert res.exit_code != 0
    assert message in res.output and 'Traceback' not in res.output
    assert not os.listdir(tmp_path)


def test_missing_network_one_line_error(tmp_path):
    res = _run(['--network', str(tmp_path / 'nope.pkl'), '--seeds', '0,1', '--out', str(tmp_path / 'v.mp4')])
    assert res.exit_code != 0 and 'Traceback' not in res.output
    assert res.output.strip().splitlines()[-1].startswith('Error:')
