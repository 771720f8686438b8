"""scripts/calc_metrics.py end to end: image folders (offline), a network fixture, and bad options."""

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'calc_metrics.py')
ALL_OFFLINE = 'fid,kid,sharpness,fqi,memorization,intra_inception'


def _load_script():
    spec = importlib.util.spec_from_file_location('calc_metrics_script', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def cli():
    return _load_script().main


def _crop(im, y, x, s, out=64):
    tile = PIL.Image.fromarray(np.ascontiguousarray(im[y:y + s, x:x + s]))
    return np.asarray(tile.resize((out, out), PIL.Image.BILINEAR))


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """shots (3 astronaut crops), copies (the shots again, in a nested folder), unrelated (3), data (zip of 3)."""
    from skimage import data

    root = tmp_path_factory.mktemp('cli')
    a = data.astronaut()
    shots = [_crop(a, 30, 150, 200), _crop(a, 60, 170, 160), _crop(a, 0, 120, 260)]
    noise = np.random.RandomState(0).randint(0, 256, (64, 64, 3)).astype(np.uint8)
    unrelated = [_crop(data.coffee(), 50, 100, 300), _crop(data.rocket(), 0, 0, 400), noise]
    test = [_crop(a, 40, 140, 220), _crop(data.chelsea(), 0, 50, 300), _crop(data.coffee(), 0, 0, 400)]
    for name, imgs, sub in (('shots', shots, ''), ('copies', shots, 'nested'), ('unrelated', unrelated, '')):
        folder = root / name / sub
        folder.mkdir(parents=True)
        for i, im in enumerate(imgs):
            PIL.Image.fromarray(im).save(folder / f'{i}.png')
    with zipfile.ZipFile(root / 'data.zip', 'w') as z:
        for i, im in enumerate(test):
            PIL.Image.fromarray(im).save(root / 'tmp.jpg', quality=95)
            z.write(root / 'tmp.jpg', f'test/{i}.jpg')
    (root / 'empty').mkdir()
    return root


def _run(cli, args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def test_end_to_end_on_image_folders(cli, folders, tmp_path):
    out = tmp_path / 'res' / 'metrics.jsonl'
    args = ['--gen-dir', folders / 'copies', '--data', folders / 'data.zip', '--shots-dir', folders / 'shots',
            '--metrics', ALL_OFFLINE, '--out', out, '--cache-dir', folders / 'cache', '--kid-subsets', 5]
    result = _run(cli, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {r['metric']: r for r in records}
    assert list(by_name) == ALL_OFFLINE.split(',')
    for r in records:
        assert set(r) >= {'metric', 'value', 'values', 'options', 'network_sha256', 'time'}
        assert r['options']['num_gen'] == 3 and r['network_sha256'] is None
        assert r['metric'] in result.output
    assert by_name['fid']['values']['fid_shots'] == pytest.approx(0, abs=1e-3)  # the copies are the shots
    assert by_name['fid']['values']['fid'] > 1 and by_name['fid']['values']['fid_ratio'] > 1e3
    assert by_name['memorization']['values']['fraction_inception'] == 1.0
    assert by_name['memorization']['values']['fraction_pixel'] == 1.0
    assert os.path.isfile(by_name['memorization']['options']['figure'])
    assert os.path.dirname(by_name['memorization']['options']['figure']) == str(out.parent)
    assert 0 <= by_name['fqi']['value'] <= 1
    assert 0 < by_name['sharpness']['value'] <= np.sqrt(2)
    assert by_name['intra_inception']['value'] is None or by_name['intra_inception']['value'] >= 0
    assert len(by_name['fid']['options']['detector_sha256']) == 64

    # A second run appends its records.
    assert _run(cli, args[:6] + ['--metrics', 'sharpness', '--out', out]).exit_code == 0
    assert len(out.read_text().splitlines()) == len(records) + 1


def test_unrelated_images_are_not_flagged(cli, folders, tmp_path):
    result = _run(cli, ['--gen-dir', folders / 'unrelated', '--shots-dir', folders / 'shots', '--metrics',
                        'memorization', '--out', tmp_path / 'm.jsonl', '--cache-dir', folders / 'cache'])
    assert result.exit_code == 0, result.output
    rec = json.loads((tmp_path / 'm.jsonl').read_text())
    assert rec['values']['fraction_inception'] == 0.0 and rec['values']['fraction_pixel'] == 0.0


def test_help_lists_registered_metrics(cli):
    from metrics.registry import get_registry

    result = CliRunner().invoke(cli, ['--help'])
    assert result.exit_code == 0
    for name in get_registry():
        assert name in result.output


@pytest.mark.parametrize('args, message', [
    (['--metrics', 'fid,nope'], 'unknown metric'),
    (['--metrics', 'kid'], '--data'),
    (['--metrics', 'memorization'], '--shots-dir'),
    (['--metrics', 'intra_lpips', '--shots-dir', '{shots}', '--lpips-weights', '{empty}/no.pth'], '--lpips-weights'),
    (['--network', 'x.pkl'], 'exactly one'),
    (['--data', '{empty}', '--metrics', 'fid'], 'holds no image'),
    (['--detector', '{shots}/0.png', '--metrics', 'fid', '--shots-dir', '{shots}'], 'not a TorchScript'),
    (['--num', '0'], '--num'),
])
def test_bad_options_give_one_line_errors(cli, folders, args, message):
    fill = dict(shots=folders / 'shots', empty=folders / 'empty')
    args = ['--gen-dir', str(folders / 'shots')] + [a.format(**fill) for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert 'Traceback' not in result.output and not isinstance(result.exception, (TypeError, AttributeError))


def test_script_runs_as_a_program_and_errors_without_traceback(folders):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, SCRIPT, '--gen-dir', str(folders / 'shots'), '--metrics', 'kid'],
                          cwd=str(folders), capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert 'needs --data' in proc.stderr and 'Traceback' not in proc.stderr


def test_end_to_end_on_a_network(cli, folders, tmp_path):
    pkl = os.path.join(ROOT, 'tests', 'fixtures', 'p1.pkl')
    out = tmp_path / 'net.jsonl'
    gen_out = tmp_path / 'gen'
    result = _run(cli, ['--network', pkl, '--metrics', 'fid,sharpness', '--shots-dir', folders / 'shots',
                        '--num', 3, '--seed', 1, '--trunc', 0.7, '--out', out, '--gen-out', gen_out,
                        '--cache-dir', folders / 'cache'])
    assert result.exit_code == 0, result.output
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r['metric'] for r in recs] == ['fid', 'sharpness']
    assert len(recs[0]['network_sha256']) == 64 and recs[0]['options']['trunc'] == 0.7
    assert recs[0]['values']['fid_shots'] > 0
    assert sorted(os.listdir(gen_out)) == ['000000.png', '000001.png', '000002.png']
    with PIL.Image.open(gen_out / '000000.png') as im:
        assert im.size == (32, 32)


GLYPHS = os.path.join(ROOT, 'data', 'glyphs')
GLYPH_METRICS = 'glyph_fgd,glyph_script,glyph_memorisation,glyph_diversity'


def test_glyph_metrics_are_registered_metrics(cli, folders, tmp_path):
    """calc_metrics computes the glyph benchmark's metrics: copies of the shots are memorised, at FGD 0 to them,
    and give the numbers of fsgan.benchmarks.glyphs.metrics.glyph_metrics; other images are not applicable."""
    from fsgan.benchmarks.glyphs.classifier import DEFAULT_PATH, load_dataset_zip, load_glyph_classifier
    from fsgan.benchmarks.glyphs.metrics import glyph_metrics
    shots_zip, test_zip = os.path.join(GLYPHS, 'kannada_shots10.zip'), os.path.join(GLYPHS, 'kannada_val.zip')
    out = tmp_path / 'g.jsonl'
    result = _run(cli, ['--gen-dir', shots_zip, '--shots-dir', shots_zip, '--data', test_zip, '--metrics',
                        GLYPH_METRICS, '--metric-opt', 'expect=kannada', '--out', out])
    assert result.exit_code == 0, result.output
    recs = {r['metric']: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(recs) == GLYPH_METRICS.split(',')
    values = {k: v for r in recs.values() for k, v in r['values'].items()}
    assert values['fgd_shots'] == pytest.approx(0, abs=1e-3) and values['fgd_test'] > 10
    assert values['memorised_glyph'] == 1.0 and values['memorised_pixel'] == 1.0
    assert recs['glyph_script']['options']['expect'] == 'kannada' and values['script_share'] > 0.9
    shots, _ = load_dataset_zip(shots_zip)
    test, _ = load_dataset_zip(test_zip)
    direct = glyph_metrics(load_glyph_classifier(DEFAULT_PATH), shots, shots, test, expect='kannada')
    for key in ('fgd_test', 'classes_covered', 'classes_total', 'script_share'):
        assert values[key] == pytest.approx(direct[key], rel=1e-6, abs=1e-9), key
    assert values['diversity_glyph'] is None  # one sample per shot: no pairs within a cluster (NaN in JSON: null)

    result = _run(cli, ['--gen-dir', folders / 'shots', '--shots-dir', folders / 'shots', '--metrics', GLYPH_METRICS,
                        '--metric-opt', 'expect=kannada', '--out', tmp_path / 'rgb.jsonl'])
    assert result.exit_code == 0, result.output
    assert result.output.count('glyph metrics not applicable') == 1
    recs = [json.loads(line) for line in (tmp_path / 'rgb.jsonl').read_text().splitlines()]
    assert len(recs) == 4 and all(r['value'] is None and 'not applicable' in r['note'] for r in recs)
    assert all(v is None for r in recs for k, v in r['values'].items())


def test_an_unreadable_image_is_one_line_naming_its_folder(cli, folders, tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    for name in os.listdir(folders / 'shots'):
        (data / name).write_bytes((folders / 'shots' / name).read_bytes())
    (data / 'zz_fake.png').write_bytes(b'not a png')
    result = CliRunner().invoke(cli, ['--gen-dir', str(folders / 'shots'), '--data', str(data), '--metrics', 'fid'])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and 'Traceback' not in result.output, result.output
    assert lines[-1] == f'Error: fid: {data}: zz_fake.png: cannot be read as an image (not a format PIL recognises); ' \
                        f'remove or fix it', result.output


def test_glyph_test_set_in_rgb_is_read_as_grey_and_a_wrong_size_is_one_line(cli, folders, tmp_path):
    """Real glyphs stored as RGB give the grey set's FGD; a test set the classifier cannot read is an error, not a
    silent fall-back to the FGD against the shots."""
    shots_zip, test_zip = os.path.join(GLYPHS, 'kannada_shots10.zip'), os.path.join(GLYPHS, 'kannada_val.zip')
    rgb = tmp_path / 'rgb_test'
    rgb.mkdir()
    with zipfile.ZipFile(test_zip) as z:
        for name in sorted(n for n in z.namelist() if n.endswith('.png'))[:60]:
            with PIL.Image.open(io.BytesIO(z.read(name))) as im:
                im.convert('RGB').save(rgb / os.path.basename(name))
    grey = tmp_path / 'grey_test'
    grey.mkdir()
    for name in os.listdir(rgb):
        with PIL.Image.open(rgb / name) as im:
            im.convert('L').save(grey / name)
    fgd = {}
    for name, data in (('rgb', rgb), ('grey', grey)):
        out = tmp_path / f'{name}.jsonl'
        result = _run(cli, ['--gen-dir', shots_zip, '--shots-dir', shots_zip, '--data', data, '--metrics',
                            'glyph_fgd', '--out', out])
        assert result.exit_code == 0, result.output
        fgd[name] = json.loads(out.read_text())['values']['fgd_test']
    assert fgd['rgb'] is not None and fgd['rgb'] == pytest.approx(fgd['grey'], rel=1e-9)
    result = CliRunner().invoke(cli, ['--gen-dir', shots_zip, '--shots-dir', shots_zip, '--data',
                                      str(folders / 'unrelated'), '--metrics', 'glyph_fgd'])
    assert result.exit_code != 0 and 'Traceback' not in result.output, result.output
    assert '--data' in result.output and 'reads 32x32 images' in result.output, result.output


@pytest.mark.parametrize('args, message', [
    (['--metrics', 'glyph_script'], "needs --metric-opt expect=..."),
    (['--metrics', 'glyph_script', '--metric-opt', 'expect=klingon'], "unknown script 'klingon'"),
    (['--metrics', 'glyph_memorisation'], 'needs --shots-dir'),
    (['--metrics', 'sharpness', '--metric-opt', 'expect'], 'expected KEY=VALUE'),
])
def test_glyph_metric_mistakes_are_one_line(cli, args, message):
    result = CliRunner().invoke(cli, ['--gen-dir', os.path.join(GLYPHS, 'kannada_shots10.zip')] + args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert 'Traceback' not in result.output


def test_every_metric_declares_its_columns():
    from fsgan.evaluate import metric_registry
    from metrics.registry import Column, register
    registry = metric_registry()
    assert {'glyph_fgd', 'glyph_script', 'glyph_memorisation', 'glyph_diversity', 'fid', 'kid'} <= set(registry)
    for spec in registry.values():
        assert spec.columns and all(isinstance(c, Column) for c in spec.columns), spec.name
    assert [c.key for c in registry['glyph_fgd'].columns] == ['fgd_test', 'fgd_shots']
    assert registry['fid'].columns[0].title == 'FID test ↓' and registry['intra_lpips'].columns[0].title.endswith('↑')
    with pytest.raises(ValueError, match='declare the columns'):
        register('no_columns', help='')
    with pytest.raises(ValueError, match='better must be'):
        Column('x', 'X', better='higher')
