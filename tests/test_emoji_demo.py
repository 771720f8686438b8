"""The emoji demo (scripts/demo.py --benchmark emoji), end to end on a tiny source and a few hundred images."""
import json
import os

import imageio
import PIL.Image
import pytest
from click.testing import CliRunner

from fsgan.benchmarks.emoji import demo
from fsgan.options import read_training_options
from scripts import demo as demo_cli
from tests.conftest import save_tiny_rgb64


@pytest.fixture(scope='module')
def tiny_source(tmp_path_factory):
    """A tiny 64x64 RGB source with a pretraining record, as the shipped source will be."""
    record = {'training_options': {'loss': {'gamma': 0.5, 'pl_weight': 0.0}}}
    return save_tiny_rgb64(tmp_path_factory.mktemp('source') / 'src.pkl', 1, record)


@pytest.mark.slow
def test_emoji_demo_writes_figures_video_and_both_metric_rows(tiny_source, tmp_path, one_thread):
    args = ['--benchmark', 'emoji', '--source', tiny_source, '--outdir', str(tmp_path), '--kimg', '0.064',
            '--num', '48', '--num-test', '100']
    res = CliRunner().invoke(demo_cli.main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    assert f'Done. Run folder: {run_dir}' in res.output and 'before/after:' in res.output
    figure = PIL.Image.open(run_dir / 'before_after.png')
    from fsgan.tools.figure import PAD, default_cell
    cell = default_cell(64)
    assert figure.size[0] > 16 * (cell + PAD) and figure.size[1] == 3 * (cell + PAD) + PAD   # 3 rows, 16 columns
    assert PIL.Image.open(run_dir / 'samples_trunc0.8.png').size == (8 * 64, 8 * 64)
    frames = imageio.mimread(str(run_dir / 'interpolation.mp4'), memtest=False)
    assert len(frames) == 64 and frames[0].shape[:2] == (256, 256)
    report = json.loads((run_dir / 'metrics.json').read_text())
    assert report['num_test'] == 100 and report['kimg'] == 0.064 and report['protocol'] == 'paper'
    assert report['batch'] == 32 and report['lr'] == demo.DEFAULT_LR
    source, adapted = report['source'], report['adapted']
    for row in (source, adapted):
        assert row['num_gen'] == 48 and row['fid_test'] > 0 and row['emoji_fd_test'] > 0 and row['kid'] is not None
        assert 0 <= row['style_share'] <= 1 and 0 <= row['nearest_shot'] <= 1 and row['intra_inception'] > 0
        assert 0 <= row['memorised_inception'] <= 1
    assert source['content'] is None and 0 <= adapted['content'] <= 1   # content: adapted vs source, same seeds
    assert source['emoji_fd_test'] != adapted['emoji_fd_test']           # the run changed the generator
    # the real column: 48 near_val images (as many as the samples, so FID too), called Twemoji, no latent
    real = report['real']
    assert real['num_gen'] == 48 and real['fid_test'] > 0 and real['content'] is None
    assert real['style_share'] >= 0.75 > adapted['style_share'] and real['reference'].endswith('near_val.zip')
    md = (run_dir / 'metrics.md').read_text()
    assert '| Metric | Source (unadapted) | Adapted (FSGAN) | Real (held-out val) |' in md
    assert '| Content preserved ↑ | n/a |' in md and 'the first 48 images of near_val.zip' in md
    opts = read_training_options(run_dir / 'training_options.json')
    assert opts['gamma'] == 0.5 and opts['pl_weight'] == 0.0 and opts['protocol'] == 'paper'
    # the paper's G_ema half-life (10 of 20 kimg) scaled to the run's length, recorded with the run and the report
    assert opts['ema_kimg'] == pytest.approx(0.032) and report['ema_kimg'] == opts['ema_kimg']
    assert opts['ema_rampup'] is None and 'G_ema half-life 0.032 kimg' in md


def test_the_real_column_comes_from_the_validation_split_beside_the_test_split(tmp_path):
    assert demo.reference_split(demo.DEFAULT_TEST).endswith(os.path.join('data', 'emoji', 'near_val.zip'))
    assert demo.reference_split(demo.DEFAULT_TEST.replace('near_test', 'far_test')).endswith('far_val.zip')
    (tmp_path / 'mine_test.zip').write_bytes(b'')
    assert demo.reference_split(str(tmp_path / 'mine_test.zip')) is None      # no validation split beside it
    assert demo.reference_split(str(tmp_path)) is None


def test_emoji_demo_without_the_shipped_source_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, 'DEFAULT_SOURCE', str(tmp_path / 'source_emoji64.pkl'))
    res = CliRunner().invoke(demo_cli.main, ['--benchmark', 'emoji', '--outdir', str(tmp_path / 'out')])
    assert res.exit_code != 0 and 'source_emoji64.pkl: no such file' in res.output
    assert 'data/emoji/README.md' in res.output and 'Traceback' not in res.output
    assert not (tmp_path / 'out').exists()
