"""The shipped pretrained glyph source: hash, options, report, and that it loads and generates."""
import json
import os

import pytest
import torch

from dnnlib.util import file_sha256
from fsgan.loading import load_network

GLYPHS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'glyphs')


def test_shipped_source_loads_and_matches_its_record():
    path = os.path.join(GLYPHS, 'source_glyph32.pkl')
    with open(os.path.join(GLYPHS, 'source_glyph32.json')) as f:
        record = json.load(f)
    with open(os.path.join(GLYPHS, 'MANIFEST.json')) as f:
        manifest = json.load(f)['files']
    sha = file_sha256(path)
    assert record['sha256'] == sha == manifest['source_glyph32.pkl']['sha256']
    assert os.path.getsize(path) < 10 * 2 ** 20
    net = load_network(path)
    assert net["G_ema"] is not None and net["D"] is not None
    G = net['G_ema']
    assert G.img_channels == 1 and G.img_resolution == 32
    stages = record['stages']
    assert stages[-1]['training_options'] == record['training_options'] and stages[-1]['snapshot'] == record['snapshot']
    assert record['kimg'] == sum(stage['kimg'] for stage in stages)
    scratch = stages[0]['training_options']
    assert scratch['source'] is None, 'the first stage trains from scratch'
    assert dict(G.init_kwargs['synthesis_kwargs']) == scratch['G_kwargs']['synthesis_kwargs']
    with torch.no_grad():
        img = G(torch.randn([16, G.z_dim]), None, truncation_psi=0.8, noise_mode='const')
        logits = net['D'](img, None)
    assert img.shape == (16, 1, 32, 32) and torch.isfinite(img).all() and torch.isfinite(logits).all()
    assert img.std(0).mean() > 0.05, 'samples of different latents should differ'
    report = record['glyph_report']
    assert report['num'] == 1000 and report['test_set'] == 'data/glyphs/source_test.zip'
    assert set(report['script_shares']) == {'latin', 'kannada', 'devanagari'} and report['fgd'] > 0


def test_training_stages_follow_resumed_runs(tmp_path, monkeypatch):
    from fsgan.benchmarks import ship
    from fsgan.benchmarks.ship import training_stages
    repo = tmp_path / 'repo'
    monkeypatch.setattr(ship, 'ROOT', str(repo))

    def run(name, kimg, source):
        folder = repo / 'out' / name
        folder.mkdir(parents=True)
        (folder / 'training_options.json').write_text(json.dumps({'source': source, 'gamma': kimg}))
        snapshot = folder / f'network-snapshot-{kimg:06d}.pkl'
        snapshot.write_bytes(b'')
        return str(snapshot)

    first = run('00000-scratch', 26, None)
    second = run('00001-continue', 64, 'out/00000-scratch/network-snapshot-000026.pkl')  # relative to the repo
    third = run('00002-again', 4, second)
    monkeypatch.chdir(tmp_path)  # not the repository: relative sources must still resolve against it
    stages = training_stages(third)
    assert [s['kimg'] for s in stages] == [26, 64, 4]
    assert [s['training_options']['gamma'] for s in stages] == [26, 64, 4]
    assert stages[0]['snapshot'] == 'out/00000-scratch/network-snapshot-000026.pkl'
    assert stages[0]['training_options']['source'] is None
    assert [s['kimg'] for s in training_stages(first)] == [26]
    for source in ('https://example.com/net.pkl', 'ffhq256'):  # downloaded or named sources end the chain
        assert [s['kimg'] for s in training_stages(run(f'from-{len(source)}', 2, source))] == [2]
    outside = tmp_path / 'elsewhere.pkl'
    outside.write_bytes(b'')
    stages = training_stages(run('from-outside', 3, str(outside)))
    assert [s['kimg'] for s in stages] == [3]

    kept = repo / 'data' / 'pretrain' / 'source.pkl'  # a stage shipped into the repository with its record
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b'')
    kept.with_suffix('.json').write_text(json.dumps({'stages': training_stages(third)}))
    stages = training_stages(run('after-kept', 7, 'data/pretrain/source.pkl'))
    assert [s['kimg'] for s in stages] == [26, 64, 4, 7]
    assert stages[-1]['training_options']['source'] == 'data/pretrain/source.pkl'
    kept.with_suffix('.json').write_text('{"stages": [')
    with pytest.raises(ValueError, match='not a ship record'):
        training_stages(str(repo / 'out' / 'after-kept' / 'network-snapshot-000007.pkl'))

    gone = run('parent-gone', 5, 'out/deleted/network-snapshot-000010.pkl')
    with pytest.raises(ValueError, match='deleted.*gone'):
        training_stages(gone)
    looped = repo / 'out' / 'loop'
    looped.mkdir()
    (looped / 'network-snapshot-000001.pkl').write_bytes(b'')
    (looped / 'training_options.json').write_text(json.dumps({'source': str(looped / 'network-snapshot-000001.pkl')}))
    with pytest.raises(ValueError, match='loop'):
        training_stages(str(looped / 'network-snapshot-000001.pkl'))


def test_ship_refuses_a_snapshot_outside_a_run_folder(tmp_path):
    from click.testing import CliRunner
    from scripts.ship_glyph_source import main
    loose = tmp_path / 'network-snapshot-000010.pkl'
    loose.write_bytes(b'')
    res = CliRunner().invoke(main, ['--snapshot', str(loose)])
    assert res.exit_code != 0 and 'no training_options.json next to it' in res.output
    assert 'Traceback' not in res.output
