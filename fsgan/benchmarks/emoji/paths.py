"""Every shipped path, package pin and constant of the emoji benchmark, in one place."""
import collections

from fsgan.benchmarks import ROOT  # noqa: F401  (the benchmark's modules take it from here)

# npm packages: exact versions, tarball URLs and npm's SRI integrity (`npm view NAME@VER dist`).
NpmPackage = collections.namedtuple('NpmPackage', 'name version url integrity')

PACKAGES = {
    'google': NpmPackage(
        'emoji-datasource-google', '16.0.0',
        'https://registry.npmjs.org/emoji-datasource-google/-/emoji-datasource-google-16.0.0.tgz',
        'sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A=='),
    'twitter': NpmPackage(
        'emoji-datasource-twitter', '16.0.0',
        'https://registry.npmjs.org/emoji-datasource-twitter/-/emoji-datasource-twitter-16.0.0.tgz',
        'sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ=='),
    'openmoji': NpmPackage(
        'openmoji', '17.0.0',
        'https://registry.npmjs.org/openmoji/-/openmoji-17.0.0.tgz',
        'sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w=='),
}

# Members inside the tarballs (npm packs everything under "package/").
INDEX_MEMBER = 'package/emoji.json'                       # emoji-datasource index (both datasource packages)
PNG_DIR = {'google': 'package/img/google/64/', 'twitter': 'package/img/twitter/64/'}
OPENMOJI_INDEX_MEMBER = 'package/data/openmoji.json'      # list of {hexcode, annotation, ...}
OPENMOJI_SVG_DIR = 'package/color/svg/'                   # colour SVGs named <hexcode>.svg

# Domains: which vendor draws each one, and the role it plays in the benchmark.
DOMAINS = {
    'noto': {'vendor': 'google', 'role': 'source',
             'licence': 'Noto Emoji images (Google): Apache-2.0'},
    'near': {'vendor': 'twitter', 'role': 'near target',
             'licence': 'Twemoji graphics (Twitter, Inc and other contributors): CC-BY-4.0'},
    'far': {'vendor': 'openmoji', 'role': 'far target',
            'licence': 'OpenMoji graphics (openmoji.org): CC-BY-SA-4.0'},
}
INDEX_LICENCE = 'emoji-datasource index emoji.json (Cal Henderson, iamcal/emoji-data): MIT'

# The 9 emoji categories of the emoji-datasource index, in Unicode's order; a label is an index into
# this list. The index's tenth category, "Component" (the five bare skin-tone swatches), is left out.
CATEGORIES = ('Smileys & Emotion', 'People & Body', 'Animals & Nature', 'Food & Drink', 'Travel & Places',
              'Activities', 'Objects', 'Symbols', 'Flags')

RESOLUTION = 64                    # output images are RESOLUTION x RESOLUTION RGB
BACKGROUND = (255, 255, 255)       # every transparent pixel is composited onto white
VARIATION_SELECTOR = 'FE0F'        # emoji presentation selector, written or not depending on the vendor

# Splits (all counted in images; targets are disjoint by content group).
SEED = 0
NOTO_TEST_FRACTION = 0.1           # share of Noto content groups held out as noto_test.zip
SHOTS = (5, 10, 25, 100)           # nested few-shot splits per target, one image per content group
VAL_IMAGES = 200                   # whole groups are added until the validation split holds at least this many
TEST_IMAGES = 1000                 # ... and the test split at least this many

# Output locations, relative to the repository root.
DATA_DIR = 'data/emoji'                         # shipped files
CACHE_DIR = 'data/emoji/cache'                  # re-made by scripts/make_emoji_data.py, never shipped
PREVIEW_DIR = 'previews'                        # inside DATA_DIR: one grid PNG per split
MANIFEST = 'MANIFEST.json'                      # inside DATA_DIR
NOTO_TRAIN = 'noto_train.zip'                   # inside CACHE_DIR: the source pretraining set
NOTO_TEST = 'noto_test.zip'                     # inside DATA_DIR
SOURCE_PICKLE = 'data/emoji/source_emoji64.pkl'  # the pretrained 64-px source (G_ema and D) and its record:
SOURCE_RECORD = 'data/emoji/source_emoji64.json'  # training options, kimg, figures (read by the preset and demo)


def target_split_names(shots=SHOTS):
    """Shipped zip names of one target domain, without the domain prefix: shots5 ... val, test."""
    return [f'shots{k}' for k in shots] + ['val', 'test']
