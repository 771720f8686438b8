"""Every file of the glyph benchmark, in one place: data/glyphs of the repository and the names inside it.

data/glyphs holds the shipped dataset zips (stylegan2-ada format, made by scripts/make_glyph_data.py),
the pretrained 32x32 source (source_glyph32.pkl and its record .json, scripts/ship_glyph_source.py),
the glyph classifier (glyph_classifier.pt + .json, scripts/train_glyph_classifier.py) and MANIFEST.json
(sha256 and size of every shipped file).
"""
import os

from fsgan.benchmarks import ROOT

DATA_DIR = os.path.join(ROOT, 'data', 'glyphs')

SOURCE_PICKLE_NAME = 'source_glyph32.pkl'
SOURCE_RECORD_NAME = 'source_glyph32.json'
SOURCE_TEST_NAME = 'source_test.zip'
CLASSIFIER_NAME = 'glyph_classifier.pt'
MANIFEST_NAME = 'MANIFEST.json'

SOURCE_PICKLE = os.path.join(DATA_DIR, SOURCE_PICKLE_NAME)
SOURCE_RECORD = os.path.join(DATA_DIR, SOURCE_RECORD_NAME)
SOURCE_TEST = os.path.join(DATA_DIR, SOURCE_TEST_NAME)
CLASSIFIER = os.path.join(DATA_DIR, CLASSIFIER_NAME)

# Target datasets and the script each is written in; each has <target>_shots{K}.zip (nested), _val, _test
# and _train (classifier training only, not shipped).
TARGET_SCRIPTS = {'near': 'latin', 'kannada': 'kannada', 'devanagari': 'devanagari'}
# Zips the glyph classifier trains on (in --train-dir): the Latin source and every target's _train split.
CLASSIFIER_TRAIN_NAMES = ('source.zip',) + tuple(f'{t}_train.zip' for t in TARGET_SCRIPTS)


def target_name(target, split):
    """File name of one split of a target: target_name('kannada', 'shots10') -> 'kannada_shots10.zip'."""
    return f'{target}_{split}.zip'


def target_file(target, split, folder=None):
    """Path of one split of a target in `folder` (default data/glyphs)."""
    return os.path.join(DATA_DIR if folder is None else folder, target_name(target, split))
