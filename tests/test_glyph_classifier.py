"""Shipped glyph classifier: integrity, accuracy on held-out glyphs, FGD sanity."""

import json
import os

import numpy as np
import pytest
import torch

from metrics.frechet import feature_stats, fid_from_features, fid_from_stats
from fsgan.benchmarks.glyphs.classifier import (fgd_between, load_dataset_zip, load_glyph_classifier, save_glyph_classifier,
                                      sha256_file)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
DATA = os.path.join(ROOT, 'data', 'glyphs')
WEIGHTS = os.path.join(DATA, 'glyph_classifier.pt')
TEST_SETS = ('source_test.zip', 'near_test.zip', 'kannada_test.zip', 'devanagari_test.zip')
OTHER_SETS = ('near_val.zip', 'near_shots100.zip', 'kannada_shots100.zip')
SUBSET = 1000


@pytest.fixture(scope='module')
def clf():
    return load_glyph_classifier(WEIGHTS)


@pytest.fixture(scope='module')
def test_sets():
    """name -> (uint8 images, labels); test sets cut to SUBSET images for speed."""
    sets = {n: load_dataset_zip(os.path.join(DATA, n), limit=SUBSET) for n in TEST_SETS}
    sets.update({n: load_dataset_zip(os.path.join(DATA, n)) for n in OTHER_SETS})
    return sets


@pytest.fixture(scope='module')
def outputs(clf, test_sets):
    """name -> (features, script logits, char logits), one classifier pass per set."""
    return {name: clf.infer(images) for name, (images, _) in test_sets.items()}


def test_manifest_hashes_match():
    with open(os.path.join(DATA, 'MANIFEST.json'), encoding='utf-8') as f:
        manifest = json.load(f)
    listed = manifest['files']
    on_disk = sorted(os.path.relpath(os.path.join(d, n), DATA) for d, _, names in os.walk(DATA) for n in names
                     if n not in ('MANIFEST.json', 'README.md'))
    assert sorted(listed) == on_disk, 'MANIFEST.json must list every shipped file (README.md aside)'
    for rel, entry in listed.items():
        path = os.path.join(DATA, rel)
        assert os.path.getsize(path) == entry['bytes'], rel
        assert sha256_file(path) == entry['sha256'], rel


def test_classifier_config(clf):
    assert clf.script_names == ['latin', 'kannada', 'devanagari']
    assert [c['text'] for c in clf.classes[:3]] == ['A', 'B', 'C'] and len(clf.classes) > 62
    assert clf.resolution == 32 and clf.channels == 1
    assert {'Z003', 'Gubbi', 'Lohit Devanagari', 'DejaVu Sans'} <= set(clf.config['families'])
    assert not any(isinstance(v, torch.nn.Module) for v in torch.load(WEIGHTS, weights_only=True).values())


@pytest.mark.parametrize('name', TEST_SETS)
def test_accuracy_on_shipped_test_sets(clf, test_sets, outputs, name):
    labels = test_sets[name][1]
    _, script_logits, char_logits = outputs[name]
    char_acc = float((char_logits.argmax(1) == labels).float().mean())
    script_acc = float((script_logits.argmax(1) == clf.char_script()[labels]).float().mean())
    assert len(labels) == SUBSET
    assert char_acc >= 0.95, f'{name}: char accuracy {char_acc:.4f}'
    assert script_acc >= 0.99, f'{name}: script accuracy {script_acc:.4f}'


def test_predict_matches_logits(clf, test_sets, outputs):
    script, char = clf.predict(test_sets['kannada_test.zip'][0][:100])
    assert torch.equal(script, outputs['kannada_test.zip'][1][:100].argmax(1))
    assert torch.equal(char, outputs['kannada_test.zip'][2][:100].argmax(1))


def test_input_conventions(clf, test_sets):
    images = test_sets['near_test.zip'][0][:64]
    f_uint8 = clf.features(images)
    f_float = clf.features(images.float() / 127.5 - 1)
    f_rgb = clf.features(images.expand(-1, 3, -1, -1))
    assert f_uint8.shape == (64, clf.config['feature_dim'])
    assert torch.allclose(f_uint8, f_float, atol=1e-5) and torch.allclose(f_uint8, f_rgb, atol=1e-5)
    with pytest.raises(ValueError, match='32x32'):
        clf.features(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))


def test_fgd_orders_domains(outputs):
    stats = {name: feature_stats(out[0].numpy()) for name, out in outputs.items()}

    def fgd(a, b):
        return fid_from_stats(*stats[a], *stats[b])
    near_far = fgd('near_test.zip', 'kannada_test.zip')
    assert abs(fgd('near_test.zip', 'near_test.zip')) < 1e-6 * near_far
    assert near_far > 2 * fgd('near_test.zip', 'near_shots100.zip')
    assert near_far > 2 * fgd('kannada_test.zip', 'kannada_shots100.zip')
    assert fgd('source_test.zip', 'devanagari_test.zip') > 1.2 * fgd('source_test.zip', 'near_test.zip')
    # the font-family head makes FGD see style: the held-out face is far from the source faces
    assert fgd('near_test.zip', 'source_test.zip') > 5 * fgd('near_test.zip', 'near_val.zip')


def test_fgd_between_uses_features(clf, test_sets):
    a, b = test_sets['near_val.zip'][0], test_sets['kannada_shots100.zip'][0]
    expected = fid_from_stats(*feature_stats(clf.features(a).numpy()), *feature_stats(clf.features(b).numpy()))
    assert fgd_between(clf, a, b) == pytest.approx(expected, rel=1e-6)
    assert fgd_between(clf, a, b) == fid_from_features(clf.features(a).numpy(), clf.features(b).numpy())


def test_save_load_roundtrip_and_tamper_check(clf, tmp_path, test_sets):
    path = str(tmp_path / 'copy.pt')
    save_glyph_classifier(clf, path)
    assert sorted(os.listdir(tmp_path)) == ['copy.json', 'copy.pt']
    copy = load_glyph_classifier(str(tmp_path / 'copy.json'))
    images = test_sets['devanagari_test.zip'][0][:32]
    assert torch.equal(copy.features(images), clf.features(images))
    with open(path, 'ab') as f:
        f.write(b'\0')
    with pytest.raises(ValueError, match='sha256'):
        load_glyph_classifier(path)
