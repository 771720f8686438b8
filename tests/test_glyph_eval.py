"""Glyph report: script shares sum to 1, coverage counts distinct predicted characters, FGD finite."""
import os

import pytest

from scripts.generate import load_generator
from scripts.glyph_eval import glyph_report
from tests.conftest import ROOT


def test_glyph_report_on_small_network(p1_path):
    G, _ = load_generator(p1_path)
    report = glyph_report(G, os.path.join(ROOT, 'data', 'glyphs', 'near_shots25.zip'), num=20)
    assert sum(report['script_shares'].values()) == pytest.approx(1.0)
    assert 1 <= report['classes_covered'] <= min(20, report['classes_total'])
    assert report['classes_total'] == 62
    assert report['fgd'] > 0


def test_glyph_report_rejects_unknown_script(p1_path):
    import click
    G, _ = load_generator(p1_path)
    with pytest.raises(click.BadParameter, match='unknown script'):
        glyph_report(G, os.path.join(ROOT, 'data', 'glyphs', 'near_shots25.zip'), num=4, expect='klingon')


def test_glyph_report_first_test_images_and_shots():
    glyphs = os.path.join(ROOT, 'data', 'glyphs')
    G, _ = load_generator(os.path.join(glyphs, 'source_glyph32.pkl'))  # grayscale, like the shots
    report = glyph_report(G, os.path.join(glyphs, 'near_shots25.zip'), num=20, num_test=12,
                          shots_zip=os.path.join(glyphs, 'near_shots10.zip'))
    assert report['test_size'] == 12 and report['fgd_shots'] > 0
    assert 0 <= report['memorised_glyph'] <= 1 and report['diversity_glyph'] > 0
    assert 'fgd_shots' not in glyph_report(G, os.path.join(glyphs, 'near_shots25.zip'), num=20)
