"""Shipping an emoji source (fsgan.benchmarks.emoji.source) on a tiny network: record, hashes, report, refusals."""
import hashlib
import json
import os

import pytest
import torch
from click.testing import CliRunner

from fsgan import load_network
from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.source import ShipError, ship_emoji_source
from scripts import ship_emoji_source as ship_cli
from tests.conftest import save_tiny_rgb64

DATA = os.path.join(paths.ROOT, paths.DATA_DIR)
REAL_TRAIN = os.path.join(DATA, 'far_val.zip')       # stand-ins for the Noto sets: small, shipped
REAL_TEST = os.path.join(DATA, 'near_shots25.zip')


@pytest.fixture(scope='module')
def run_snapshot(tmp_path_factory):
    """A tiny 64x64 RGB snapshot inside a run folder with a grouped training_options.json."""
    run = tmp_path_factory.mktemp('runs') / '00000-scratch-emoji64'
    run.mkdir()
    (run / 'training_options.json').write_text(json.dumps({'loss': {'gamma': 0.1}, 'run': {'kimg': 5000.0}}))
    return save_tiny_rgb64(run / 'network-snapshot-000012.500.pkl', 2)


@pytest.mark.slow
def test_ship_writes_a_loadable_source_with_its_record(run_snapshot, tmp_path, one_thread):
    record = ship_emoji_source(run_snapshot, data_dir=str(tmp_path), num=24, train_zip=REAL_TRAIN,
                               test_zip=REAL_TEST)
    pkl = tmp_path / 'source_emoji64.pkl'
    assert hashlib.sha256(pkl.read_bytes()).hexdigest() == record['sha256'] and record['bytes'] == pkl.stat().st_size
    assert json.loads((tmp_path / 'source_emoji64.json').read_text()) == record
    net = load_network(str(pkl))
    assert net['G'] is None and net['G_ema'].img_resolution == 64 and net['D'] is not None
    assert record['kimg'] == 12.5 and record['training_options']['gamma'] == 0.1 and len(record['stages']) == 1
    grid = tmp_path / record['grid']
    assert hashlib.sha256(grid.read_bytes()).hexdigest() == record['grid_sha256']
    report = record['report']
    from metrics.images import ImageSet
    assert (report['num'], report['num_train'], report['num_test']) == (24, len(ImageSet(REAL_TRAIN)),
                                                                          len(ImageSet(REAL_TEST)))
    assert report['fid_all_noto'] > 0 and report['fid_floor_test_vs_train'] > 0
    assert report['fid_all_noto'] > report['fid_floor_test_vs_train']       # noise vs real emoji
    # the floor moved from the held-out set's counts (test against train) to the generator's (num against all)
    a, b = report['fid_bias_fit']['a'], report['fid_bias_fit']['b']
    n_test, n_train = report['num_test'], report['num_train']
    assert a > 0 and report['fid_floor_at_num'] == pytest.approx(
        report['fid_floor_test_vs_train'] - a / n_test - b / n_train + a / 24 + b / (n_test + n_train))
    assert sum(report['style_shares'].values()) == pytest.approx(1.0)
    assert sum(report['category_shares'].values()) == pytest.approx(1.0)
    assert report['acceptance']['fid_at_most_40'] is False                   # an untrained network
    # the preset and the demo adapt with the recorded regularisation
    from fsgan.benchmarks.preset import source_regularisation
    assert source_regularisation(str(pkl)) == {'gamma': 0.1}


def test_ship_without_report_then_again_from_a_copy_of_the_run(run_snapshot, tmp_path):
    """On a machine without the Inception weights: ship G_ema + D with no report; the copy, put back in a run
    folder, ships again with the same networks and the training record."""
    args = ['--snapshot', run_snapshot, '--no-report', '--data-dir', str(tmp_path / 'o')]
    res = CliRunner().invoke(ship_cli.main, args)
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / 'o' / 'source_emoji64.json').read_text())
    assert record['report'] is None and record['kimg'] == 12.5 and (tmp_path / 'o' / record['grid']).is_file()
    assert os.path.getsize(tmp_path / 'o' / 'source_emoji64.pkl') < os.path.getsize(run_snapshot)   # G left out
    run = tmp_path / 'back' / '00000-scratch-emoji64'
    run.mkdir(parents=True)
    (run / 'training_options.json').write_text(open(os.path.join(os.path.dirname(run_snapshot),
                                                                  'training_options.json')).read())
    copy = run / 'network-snapshot-000012.500.pkl'
    copy.write_bytes((tmp_path / 'o' / 'source_emoji64.pkl').read_bytes())
    again = ship_emoji_source(str(copy), data_dir=str(tmp_path / 'final'), report=False)
    first = load_network(str(tmp_path / 'o' / 'source_emoji64.pkl'))
    second = load_network(str(tmp_path / 'final' / 'source_emoji64.pkl'))
    for a, b in zip(first['G_ema'].state_dict().values(), second['G_ema'].state_dict().values()):
        assert torch.equal(a, b)
    assert again['kimg'] == 12.5 and again['training_options'] == record['training_options']


def test_ship_refusals_write_nothing(run_snapshot, tmp_path):
    loose = tmp_path / 'loose.pkl'
    loose.write_bytes(open(run_snapshot, 'rb').read())
    with pytest.raises(ShipError, match='no training_options.json'):
        ship_emoji_source(str(loose), data_dir=str(tmp_path / 'out'))
    with pytest.raises(ShipError, match='missing; make it with scripts/make_emoji_data.py'):
        ship_emoji_source(run_snapshot, data_dir=str(tmp_path / 'out'), train_zip=str(tmp_path / 'noto_train.zip'))
    assert not (tmp_path / 'out').exists()
    res = CliRunner().invoke(ship_cli.main, ['--snapshot', str(loose)])
    assert res.exit_code != 0 and 'loose.pkl: no training_options.json' in res.output
    assert 'Traceback' not in res.output


def test_ship_checks_the_network_and_device_and_a_failed_report_writes_nothing(run_snapshot, p1_path, tmp_path,
                                                                               monkeypatch):
    run = tmp_path / 'runs' / '00000-scratch-glyph32'
    run.mkdir(parents=True)
    (run / 'training_options.json').write_text('{}')
    small = run / 'network-snapshot-000001.000.pkl'
    small.write_bytes(open(p1_path, 'rb').read())               # a 32x32 network
    for args, message in (([str(small), '--no-report'], 'draws 64x64 RGB images; this network draws 32x32'),
                          ([str(small), '--report-only'], 'draws 64x64 RGB images'),
                          ([run_snapshot, '--report-only', '--no-report'], 'exclude each other')):
        res = CliRunner().invoke(ship_cli.main, ['--snapshot'] + args + ['--data-dir', str(tmp_path / 'out')])
        lines = res.output.strip().splitlines()
        assert res.exit_code != 0 and len(lines) == 1 and message in lines[0], res.output
    if not torch.cuda.is_available():
        with pytest.raises(ShipError, match='--device cuda: no CUDA device here'):
            ship_emoji_source(run_snapshot, data_dir=str(tmp_path / 'out'), device='cuda', report=False)
    from fsgan.benchmarks.emoji import source

    def failing_report(*args, **kwargs):
        raise ValueError('the report failed')
    monkeypatch.setattr(source, 'source_report', failing_report)
    with pytest.raises(ValueError, match='the report failed'):
        ship_emoji_source(run_snapshot, data_dir=str(tmp_path / 'out'), train_zip=REAL_TRAIN, test_zip=REAL_TEST)
    assert not (tmp_path / 'out').exists()


def test_shipping_over_a_source_needs_overwrite(run_snapshot, tmp_path):
    first = ship_emoji_source(run_snapshot, data_dir=str(tmp_path), report=False)
    before = {n: (tmp_path / n).read_bytes() for n in ('source_emoji64.pkl', 'source_emoji64.json')}
    res = CliRunner().invoke(ship_cli.main, ['--snapshot', run_snapshot, '--no-report', '--data-dir', str(tmp_path)])
    assert res.exit_code != 0 and 'source_emoji64.pkl: exists; pass --overwrite' in res.output
    assert 'Traceback' not in res.output
    assert all((tmp_path / n).read_bytes() == b for n, b in before.items())     # nothing written
    res = CliRunner().invoke(ship_cli.main, ['--snapshot', run_snapshot, '--no-report', '--data-dir', str(tmp_path),
                                             '--overwrite'])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / 'source_emoji64.json').read_text())
    from dnnlib.util import file_sha256
    assert record['sha256'] == file_sha256(str(tmp_path / 'source_emoji64.pkl')) and record['kimg'] == first['kimg']


def test_total_kimg_of_stages_is_rounded_to_the_image():
    from fsgan.benchmarks.ship import total_kimg
    assert total_kimg([{'kimg': 50.4}, {'kimg': 1.376}]) == 51.776      # a float sum gives 51.775999999999996
    assert total_kimg([{'kimg': 50.4}, {'kimg': None}]) is None


def test_shipped_source_loads_and_matches_its_record():
    """data/emoji/source_emoji64.pkl: the hash and size its record states, G_ema and D of the emoji64 architecture
    the first stage trained from scratch, stages that add up to its kimg, a grid and a report of 5,000 samples."""
    from dnnlib.util import file_sha256
    path = os.path.join(paths.ROOT, paths.SOURCE_PICKLE)
    with open(os.path.join(paths.ROOT, paths.SOURCE_RECORD)) as f:
        record = json.load(f)
    assert record['sha256'] == file_sha256(path) and record['bytes'] == os.path.getsize(path)
    assert file_sha256(os.path.join(DATA, record['grid'])) == record['grid_sha256']
    stages = record['stages']
    assert abs(record['kimg'] - sum(stage['kimg'] for stage in stages)) < 1e-6
    scratch = stages[0]['training_options']
    assert scratch['source'] is None and scratch['cfg'] == 'emoji64', 'the first stage trains from scratch'
    net = load_network(path)
    G, D = net['G_ema'], net['D']
    assert G is not None and D is not None and net.get('G') is None
    assert (G.img_channels, G.img_resolution, D.img_resolution) == (3, 64, 64)
    assert dict(G.init_kwargs['synthesis_kwargs']) == scratch['G_kwargs']['synthesis_kwargs']
    with torch.no_grad():
        img = G(torch.randn([8, G.z_dim], generator=torch.Generator().manual_seed(0)), None, truncation_psi=0.8,
                noise_mode='const')
        logits = D(img, None)
    assert img.shape == (8, 3, 64, 64) and torch.isfinite(img).all() and torch.isfinite(logits).all()
    assert img.std(0).mean() > 0.05, 'samples of different latents should differ'
    report = record['report']
    assert report['num'] == 5000 and report['train_set'] == 'data/emoji/cache/noto_train.zip'
    assert 0 < report['fid_floor_at_num'] < report['fid_floor_test_vs_train'] and report['fid_all_noto'] > 0
    assert abs(sum(report['style_shares'].values()) - 1) < 1e-6
    assert set(report['category_shares']) == set(report['real_category_shares']) and len(report['category_shares']) == 9
