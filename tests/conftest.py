"""Shared fixtures: paths of the bundled NVIDIA-format network pickles and small target sets."""
import os
import signal

import numpy as np
import PIL.Image
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')


@pytest.fixture(scope='session')
def p1_path():
    return os.path.join(FIXTURES, 'p1.pkl')


@pytest.fixture(scope='session')
def p2_path():
    return os.path.join(FIXTURES, 'p2.pkl')


@pytest.fixture(scope='session')
def target_dir(tmp_path_factory):
    """10 generated RGB target images of mixed sizes (smooth colour blobs)."""
    path = tmp_path_factory.mktemp('targets')
    rng = np.random.RandomState(123)
    for i in range(10):
        h, w = (40, 48) if i % 2 else (32, 32)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        base = rng.rand(3) * 255
        img = base[None, None, :] * (0.5 + 0.5 * np.sin(6 * xx + i)[..., None] * np.cos(4 * yy)[..., None])
        PIL.Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path / f'target{i:02d}.png')
    return str(path)


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for a module: on a small shared CPU two threads mostly wait on each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler (KeyboardInterrupt) for one test: a suite started in the background (`cmd &`
    in a script) inherits SIGINT ignored, and then no Ctrl-C could be simulated."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class CtrlCWriter:
    """A binary file wrapper whose second write() sends this process a SIGINT (Ctrl-C) before writing: the
    signal arrives in the middle of whatever serialises into it. (torch.save then reports the KeyboardInterrupt
    as a RuntimeError, 'unexpected pos', raised while closing its archive.)"""

    def __init__(self, f):
        self.f, self.writes = f, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def save_tiny_rgb64(path, seed=0, record=None):
    """Save a 64x64 RGB StyleGAN2 with few channels (G, D, G_ema = G) as a snapshot at `path`, seeded; with
    `record`, also its pretraining record (a dict) as the .json beside it, as shipped sources have. Returns path."""
    import json
    from fsgan.export import save_snapshot
    from training import networks
    torch.manual_seed(seed)
    G = networks.Generator(z_dim=16, w_dim=16, c_dim=0, img_resolution=64, img_channels=3,
                           mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=256, channel_max=8))
    D = networks.Discriminator(c_dim=0, img_resolution=64, img_channels=3, channel_base=256, channel_max=8,
                               epilogue_kwargs=dict(mbstd_group_size=4))
    save_snapshot(str(path), G, D, G)
    if record is not None:
        with open(os.path.splitext(str(path))[0] + '.json', 'w') as f:
            json.dump(record, f)
    return str(path)
