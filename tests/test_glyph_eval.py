"""Glyph report: script shares sum to 1, coverage counts distinct predicted characters, FGD finite."""
import os

import pytest

from fsgan.sampling import load_generator
from fsgan.benchmarks.glyphs.eval import glyph_report
from tests.conftest import ROOT


def test_glyph_report_on_small_network(p1_path):
    G, _ = load_generator(p1_path)
    report = glyph_report(G, os.path.join(ROOT, 'data', 'glyphs', 'near_shots25.zip'), num=20)
    assert sum(report['script_shares'].values()) == pytest.approx(1.0)
    assert 1 <= report['classes_covered'] <= min(20, report['classes_total'])
    assert report['classes_total'] == 62
    assert report['fgd'] > 0


def test_glyph_report_rejects_unknown_script(p1_path):
    from fsgan.tools.errors import OptionError
    G, _ = load_generator(p1_path)
    with pytest.raises(OptionError, match='unknown script') as info:
        glyph_report(G, os.path.join(ROOT, 'data', 'glyphs', 'near_shots25.zip'), num=4, expect='klingon')
    assert info.value.option == '--expect'


def test_glyph_report_first_test_images_and_shots():
    glyphs = os.path.join(ROOT, 'data', 'glyphs')
    G, _ = load_generator(os.path.join(glyphs, 'source_glyph32.pkl'))  # grayscale, like the shots
    report = glyph_report(G, os.path.join(glyphs, 'near_shots25.zip'), num=20, num_test=12,
                          shots_zip=os.path.join(glyphs, 'near_shots10.zip'))
    assert report['test_size'] == 12 and report['fgd_shots'] > 0
    assert 0 <= report['memorised_glyph'] <= 1 and report['diversity_glyph'] > 0
    assert 'fgd_shots' not in glyph_report(G, os.path.join(glyphs, 'near_shots25.zip'), num=20)


def test_ink_stats_on_known_images():
    """Black/white halves: ink share and pair distance in the generator's [-1, 1] units."""
    import torch
    from fsgan.benchmarks.glyphs.metrics import ink_stats
    black = torch.zeros([2, 1, 4, 4], dtype=torch.uint8)
    white = torch.full([2, 1, 4, 4], 255, dtype=torch.uint8)
    stats = ink_stats(torch.cat([black, white]))        # pairs (black, white): distance 2 everywhere
    assert stats['ink'] == pytest.approx(0.5) and stats['pair_l1'] == pytest.approx(2.0)
    same = ink_stats(torch.cat([white, white]))
    assert same['ink'] == pytest.approx(1.0) and same['pair_l1'] == pytest.approx(0.0)
    half = black.clone()
    half[..., :2] = 255                                  # left half inked
    mixed = ink_stats(torch.cat([black, half]))
    assert mixed['ink'] == pytest.approx(0.25) and mixed['pair_l1'] == pytest.approx(1.0)
    assert ink_stats(white[:1])['pair_l1'] is None


def test_glyph_report_has_ink_stats():
    glyphs = os.path.join(ROOT, 'data', 'glyphs')
    G, _ = load_generator(os.path.join(glyphs, 'source_glyph32.pkl'))
    report = glyph_report(G, os.path.join(glyphs, 'near_shots25.zip'), num=20)
    from fsgan.benchmarks.glyphs.classifier import load_dataset_zip
    from fsgan.benchmarks.glyphs.metrics import ink_stats
    real = ink_stats(load_dataset_zip(os.path.join(glyphs, 'near_shots25.zip'))[0])
    assert report['ink_test'] == pytest.approx(real['ink']) and report['pair_l1_test'] == pytest.approx(real['pair_l1'])
    for key in ('ink_samples', 'pair_l1_samples'):
        assert 0 < report[key] < 2, key


class _LookupGenerator:
    """A 'conditional generator' that draws the real test glyph of class (requested + shift) % 62."""

    def __init__(self, glyphs, labels, shift):
        import torch
        self.c_dim, self.z_dim, self.shift = 62, 4, shift
        self.table = torch.stack([glyphs[int((labels == k).nonzero()[0])] for k in range(62)]).float() / 127.5 - 1

    def __call__(self, z, c, truncation_psi=1.0, noise_mode='const'):
        return self.table[(c.argmax(1) + self.shift) % 62]


def test_glyph_report_class_match_of_a_conditional_generator():
    from fsgan.benchmarks.glyphs.classifier import load_dataset_zip
    test_zip = os.path.join(ROOT, 'data', 'glyphs', 'near_test.zip')
    glyphs, labels = load_dataset_zip(test_zip)
    right = glyph_report(_LookupGenerator(glyphs, labels, 0), test_zip, num=124, num_test=200)
    wrong = glyph_report(_LookupGenerator(glyphs, labels, 1), test_zip, num=124, num_test=200)
    assert right['class_match'] > 0.8 and wrong['class_match'] < 0.2
    assert right['classes_covered'] > 50
    G, _ = load_generator(os.path.join(ROOT, 'data', 'glyphs', 'source_glyph32.pkl'))
    assert glyph_report(G, test_zip, num=4, num_test=20)['class_match'] is None  # unconditional
