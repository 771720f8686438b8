"""One seed -> latent convention for every tool: generate.py, the metrics' sample folders, compare."""
import os

import numpy as np
import PIL.Image

from fsgan import load_network
from fsgan.evaluate import write_samples
from fsgan.sampling import generate_images as tool_images


def test_metric_samples_are_the_seeds_generate_shows(p1_path, tmp_path):
    G = load_network(p1_path)['G_ema'].eval().requires_grad_(False)
    write_samples(G, str(tmp_path), range(3, 8), trunc=1.0, batch=2)
    shown = tool_images(G, [3, 4, 5, 6, 7], trunc=1.0)  # uint8 [5, H, W, C], seed by seed
    assert sorted(os.listdir(tmp_path)) == [f'{i:06d}.png' for i in range(5)]
    for i in range(5):
        saved = np.asarray(PIL.Image.open(os.path.join(tmp_path, f'{i:06d}.png')))
        saved = saved[:, :, None] if saved.ndim == 2 else saved
        assert np.abs(saved.astype(int) - shown[i].astype(int)).max() <= 1  # batched rounding at most
    first = np.asarray(PIL.Image.open(os.path.join(tmp_path, '000000.png')))
    other = tool_images(G, [0], trunc=1.0)[0]
    assert np.abs(first.astype(int) - other.astype(int).squeeze()).max() > 8  # seed 3 is not seed 0
