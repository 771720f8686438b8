"""The README's command one, end to end on a few images (the real job, shortened)."""
import json
import os

import imageio
import PIL.Image
from click.testing import CliRunner

from scripts import demo


def test_demo_writes_samples_video_metrics(tmp_path):
    res = CliRunner().invoke(demo.main, ['--outdir', str(tmp_path), '--kimg', '0.016'], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    assert str(run_dir) in res.output
    grid = PIL.Image.open(run_dir / 'samples_trunc0.8.png')
    assert grid.size == (8 * 32, 8 * 32)
    frames = imageio.mimread(str(run_dir / 'interpolation.mp4'), memtest=False)
    assert len(frames) == 64 and frames[0].shape[:2] == (128, 128)
    metrics = json.loads((run_dir / 'metrics.json').read_text())
    assert metrics['num_samples'] == 64 and metrics['sharpness_mean'] > 0
    assert 0 <= metrics['memorised_fraction'] <= 1
    shots = json.loads((run_dir / 'target_shots.json').read_text())
    assert len(shots['files']) == 10
