"""The README's command one, end to end on a few hundred images (the real job, shortened)."""
import json
import os

import imageio
import PIL.Image
import pytest
from click.testing import CliRunner

from scripts import demo as demo_cli
from fsgan.benchmarks.glyphs import demo
from fsgan.options import read_training_options
from tests.conftest import ROOT


@pytest.mark.slow
def test_demo_writes_samples_video_metrics(tmp_path, one_thread):
    assert os.path.isfile(demo.DEFAULT_SOURCE) and os.path.isfile(demo.DEFAULT_TEST)
    args = ['--glyphs', '--outdir', str(tmp_path), '--kimg', '0.2', '--num', '64', '--num-test', '100']
    res = CliRunner().invoke(demo_cli.main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    assert f'Done. Run folder: {run_dir}' in res.output
    grid = PIL.Image.open(run_dir / 'samples_trunc0.8.png')
    assert grid.size == (8 * 32, 8 * 32)
    frames = imageio.mimread(str(run_dir / 'interpolation.mp4'), memtest=False)
    assert len(frames) == 64 and frames[0].shape[:2] == (128, 128)
    metrics = json.loads((run_dir / 'metrics.json').read_text())
    assert metrics['num_gen'] == 64 and metrics['num_test'] == 100 and metrics['kimg'] == 0.2
    assert metrics['fgd_test'] > 0 and metrics['fid_test'] > 0 and metrics['sharpness_mean'] > 0
    for key in ('memorised_glyph', 'memorised_inception', 'memorised_pixel', 'script_share'):
        assert 0 <= metrics[key] <= 1, key
    assert metrics['classes_total'] > 60 and metrics['diversity_glyph'] > 0
    assert '| FGD test ↓ |' in (run_dir / 'metrics.md').read_text()
    # the shipped source's own regularisation (source_glyph32.json), not train.py's defaults
    opts = read_training_options(run_dir / 'training_options.json')
    with open(os.path.splitext(demo.DEFAULT_SOURCE)[0] + '.json') as f:
        pretraining = json.load(f)['training_options']
    for key in ('gamma', 'pl_weight', 'style_mixing'):
        assert opts[key] == pretraining[key], key
    assert opts['losses']['mode_seeking'] == dict(weight=pretraining['mode_seeking'],
                                                  hinge=bool(pretraining['mode_seeking_hinge']))
    assert opts['lr'] == metrics['lr'] == demo.DEFAULT_LR
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = ' '.join(f.read().split())
    assert f'with FSGAN (lr {demo.DEFAULT_LR:g},' in readme, 'README must state the demo learning rate'
    hinged = 'hinged ' if pretraining.get('mode_seeking_hinge') else ''
    assert f'{hinged}mode seeking {pretraining["mode_seeking"]:g}) to the 10 bundled Kannada' in readme
    assert "regularisation the source's own: R1 gamma 5" in (run_dir / 'metrics.md').read_text()
    shots = json.loads((run_dir / 'target_shots.json').read_text())
    assert len(shots['files']) == 10
    snapshots = [f for f in os.listdir(run_dir) if f.startswith('network-snapshot-')]
    assert snapshots == ['network-snapshot-000000.208.pkl']  # 13 batches of 16 reach 0.2 kimg


def test_demo_broken_source_json_is_one_line(tmp_path):
    (tmp_path / 'src.pkl').write_bytes(b'')
    (tmp_path / 'src.json').write_text('[1, 2')
    res = CliRunner().invoke(demo_cli.main, ['--glyphs', '--outdir', str(tmp_path / 'out'),
                                                '--source', str(tmp_path / 'src.pkl')])
    assert res.exit_code != 0 and 'src.json' in res.output and 'Traceback' not in res.output
    assert not (tmp_path / 'out').exists()


def test_demo_bad_source_is_one_line(tmp_path):
    for benchmark in ('glyphs', 'emoji'):
        res = CliRunner().invoke(demo_cli.main, ['--benchmark', benchmark, '--outdir', str(tmp_path),
                                                 '--source', str(tmp_path / 'none.pkl')])
        assert res.exit_code != 0 and 'none.pkl' in res.output and 'Traceback' not in res.output, benchmark
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('case', ['empty test', 'file as test', 'unreadable test image', 'outdir is a file'])
def test_demo_checks_its_output_folder_and_test_set_before_training(tmp_path, case, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError('trained before the options were checked')
    monkeypatch.setattr(demo, 'run_demo', no_training)
    args, option = ['--glyphs', '--outdir', str(tmp_path / 'out')], '--test'
    if case == 'empty test':
        (tmp_path / 'empty').mkdir()
        args += ['--test', str(tmp_path / 'empty')]
    elif case == 'file as test':
        (tmp_path / 'notes.txt').write_text('x')
        args += ['--test', str(tmp_path / 'notes.txt')]
    elif case == 'unreadable test image':
        (tmp_path / 'test').mkdir()
        PIL.Image.new('L', (32, 32)).save(tmp_path / 'test' / 'a.png')
        (tmp_path / 'test' / 'b.png').write_bytes(b'no image')
        args += ['--test', str(tmp_path / 'test')]
    else:
        (tmp_path / 'afile').write_text('mine')
        args, option = ['--glyphs', '--outdir', str(tmp_path / 'afile')], '--outdir'
    res = CliRunner().invoke(demo_cli.main, args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and 'Traceback' not in res.output and option in lines[-1], res.output
    if case == 'unreadable test image':
        assert 'b.png' in lines[-1]
    if case == 'outdir is a file':
        assert (tmp_path / 'afile').read_text() == 'mine'


@pytest.mark.parametrize('args, expect', [([], 'emoji'), (['--glyphs'], 'glyphs'), (['--benchmark', 'glyphs'], 'glyphs'),
                                          (['--glyphs', '--benchmark', 'glyphs'], 'glyphs'),
                                          (['--glyphs', '--benchmark', 'emoji'], None)])
def test_demo_runs_emoji_by_default_and_glyphs_on_request(tmp_path, args, expect, monkeypatch):
    from fsgan.benchmarks.emoji import demo as emoji_demo
    ran = []

    def recorder(name):
        def run_demo(*args, **kwargs):
            ran.append(name)
            raise SystemExit(0)  # stop before training: only the choice of demo is under test
        return run_demo
    for name, module in (('glyphs', demo), ('emoji', emoji_demo)):
        monkeypatch.setattr(module, 'run_demo', recorder(name))
    res = CliRunner().invoke(demo_cli.main, args + ['--outdir', str(tmp_path / 'out')])
    if expect is None:
        assert res.exit_code == 2 and '--glyphs' in res.output.strip().splitlines()[-1] and not ran
    else:
        assert res.exit_code == 0 and ran == [expect], res.output


def test_demo_measures_the_script_of_its_target():
    assert demo.target_script(os.path.join('data', 'glyphs', 'devanagari_shots10.zip')) == 'devanagari'
    assert demo.target_script('data/glyphs/near_shots25.zip') == 'latin'
    assert demo.target_script('/my/glyphs/') is None          # unknown: no script share rather than a wrong one
    from fsgan.benchmarks.emoji.demo import test_label
    assert test_label('data/emoji/far_test.zip') == 'far (OpenMoji)' and test_label('/x/mine') == 'mine'
