"""scripts/svd_explore.py: layer listing, exact singular-value scaling, the figure, errors."""
import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from fsgan.tools import figure
from fsgan.tools import svd_explore
from scripts import svd_explore as cli
from fsgan.sampling import generate_images, load_generator


@pytest.fixture(scope='module')
def G(p1_path, one_thread):
    return load_generator(p1_path)[0]


def _run(args):
    return CliRunner().invoke(cli.main, args)


def test_list_names_shapes_counts(p1_path):
    res = _run(['--network', p1_path, '--list'])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line.split() for line in res.output.splitlines()[1:]}
    assert lines['synthesis.b4.conv1'][1:3] == ['64x64x3x3', '64']
    assert lines['synthesis.b32.conv0'][1:3] == ['32x64x3x3', '32']
    assert lines['mapping.fc0'][-1] == 'fsgan'
    assert lines['synthesis.b8.torgb'][1:3] == ['3x64x1x1', '3']


def test_scaled_weight_is_rank_one_change(G):
    w = G.synthesis.b8.conv0.weight
    svd = svd_explore.layer_svd(w)
    assert torch.equal(svd_explore.scaled_weight(w, svd, 0, 1.0), w)
    flat = w.reshape(w.shape[0], -1).double()
    changed = svd_explore.scaled_weight(w, svd, 1, 3.0).reshape(w.shape[0], -1).double()
    s_old = torch.linalg.svdvals(flat)
    s_new = torch.linalg.svdvals(changed)
    # sigma_2 tripled (it becomes the largest), the rest unchanged
    expected = torch.cat([s_old[:1], 3 * s_old[1:2], s_old[2:]]).sort(descending=True).values
    assert torch.allclose(s_new, expected, rtol=1e-5)


@pytest.mark.parametrize('layer', ['mapping.fc0', 'synthesis.b8.conv0'])
def test_scale_one_is_identity_scale_zero_changes(G, layer):
    seeds = [0, 1]
    ref = generate_images(G, seeds)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    rows, labels = svd_explore.svd_rows(G, layer, top=2, scales=[1.0, 0.0], seeds=seeds)
    assert len(rows) == 2 * len(seeds) and labels[0].startswith('sv1') and labels[2].startswith('sv2')
    for r, row in enumerate(rows):
        assert np.array_equal(row[0], ref[r % len(seeds)])       # scale 1: the unmodified image
        assert np.abs(row[1].astype(int) - row[0].astype(int)).mean() > 0.5  # scale 0: changed
    for k, v in G.state_dict().items():  # weight restored
        assert torch.equal(v, before[k])


def test_cli_figure_layout(p1_path, tmp_path):
    out = tmp_path / 'fig.png'
    res = _run(['--network', p1_path, '--layer', 'synthesis.b4.conv1', '--top', '2', '--scales', '0,1,3',
                '--seeds', '0-1', '--cell', '32', '--out', str(out)])
    assert res.exit_code == 0, res.output
    w, h = PIL.Image.open(out).size
    rows, cols = 2 * 2, 3
    assert h == figure.HEADER + rows * (32 + figure.PAD) + figure.PAD
    assert w > cols * (32 + figure.PAD)


@pytest.mark.parametrize('args, message', [
    (['--layer', 'synthesis.b99.conv0'], 'run with --list to see the layer names'),
    (['--layer', 'synthesis.b8.torgb', '--top', '4'], '--top must be <= 3'),
    (['--layer', 'mapping.fc0', '--scales', '1,two'], "'two' is not a number"),
    (['--layer', 'mapping.fc0', '--out-ext', 'jpg'], 'must end in .png'),
    (['--out-only'], 'give a layer name'),
])
def test_bad_arguments_one_line_error(p1_path, tmp_path, args, message):
    out = str(tmp_path / ('f.jpg' if '--out-ext' in args else 'f.png'))
    args = [a for a in args if a not in ('--out-ext', 'jpg', '--out-only')]
    res = _run(['--network', p1_path, '--seeds', '0', '--out', out] + args)
    assert res.exit_code != 0
    assert message in res.output and 'Traceback' not in res.output
    assert res.output.strip().splitlines()[-1].startswith('Error:')
