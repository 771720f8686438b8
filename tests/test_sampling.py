"""One seed -> latent convention for every tool: generate.py, the metrics' sample folders, compare."""
import os

import numpy as np
import PIL.Image

from fsgan import load_network
from metrics.generate import generate_images as metric_images
from fsgan.sampling import generate_images as tool_images


def test_metric_samples_are_the_seeds_generate_shows(p1_path, tmp_path):
    G = load_network(p1_path)['G_ema']
    metric_images(G, str(tmp_path), num=5, seed=3, truncation_psi=1.0, batch_size=2)
    shown = tool_images(G, [3, 4, 5, 6, 7], trunc=1.0)  # uint8 [5, H, W, C], seed by seed
    for i in range(5):
        saved = np.asarray(PIL.Image.open(os.path.join(tmp_path, f'{i:06d}.png')))
        saved = saved[:, :, None] if saved.ndim == 2 else saved
        assert np.abs(saved.astype(int) - shown[i].astype(int)).max() <= 1  # batched rounding at most
    first = np.asarray(PIL.Image.open(os.path.join(tmp_path, '000000.png')))
    other = tool_images(G, [0], trunc=1.0)[0]
    assert np.abs(first.astype(int) - other.astype(int).squeeze()).max() > 8  # seed 3 is not seed 0
