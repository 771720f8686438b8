"""The shipped pretrained glyph source: hash, options, report, and that it loads and generates."""
import json
import os

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


def test_training_stages_follow_resumed_runs(tmp_path):
    from scripts.ship_glyph_source import training_stages

    def run(name, kimg, source):
        folder = tmp_path / name
        folder.mkdir()
        (folder / 'training_options.json').write_text(json.dumps({'source': source, 'gamma': kimg}))
        snapshot = folder / f'network-snapshot-{kimg:06d}.pkl'
        snapshot.write_bytes(b'')
        return str(snapshot)

    first = run('00000-scratch', 26, None)
    second = run('00001-continue', 64, first)
    third = run('00002-again', 4, second)
    stages = training_stages(third)
    assert [s['kimg'] for s in stages] == [26, 64, 4]
    assert [s['training_options']['gamma'] for s in stages] == [26, 64, 4]
    assert stages[0]['training_options']['source'] is None
    outside = run('00003-from-url', 2, 'https://example.com/net.pkl')
    assert [s['kimg'] for s in training_stages(outside)] == [2]
