"""Glyph-domain numbers for generated 32x32 glyphs, all from the glyph classifier (fsgan.benchmarks.glyphs.classifier),
and the metrics that report them (registered in metrics.registry on import; see fsgan.evaluate.metric_registry).

Inception knows nothing about glyphs, so for the glyph benchmark the classifier's penultimate features
(128-d) stand in for Inception features:

* fgd_test / fgd_shots: Fréchet distance (FGD; the FID formula of metrics.frechet) of the samples to
  the test set / to the shots;
* script_shares: {script: share of samples the classifier assigns to it}; script_share: the expected one's;
* classes_covered: distinct characters of that script among the predicted characters (of classes_total);
* class_match: for a class-conditional generator, the share of samples predicted as the character they
  were generated for (`requested`, in the dataset's global labels);
* memorised_glyph: share of samples whose nearest shot is closer, in glyph-feature space, than their
  nearest held-out real image (the test set): a data-copying check. Samples drawn like the test images
  score about K / (K + M) for K shots and M test images; copies of the shots score 1. (The shot-gap
  rule of metrics.memorization misfires here: features cluster by character, so a held-out glyph of a
  shot's character is nearer to that shot than two different shots are to each other.)
* memorised_pixel: metrics.memorization in pixel space ([0, 1] grey levels): closer to a shot than any
  two shots are to each other;
* diversity_glyph: CDC intra-cluster mean pairwise feature distance (metrics.diversity); samples join
  the cluster of their nearest shot.

Registered metrics (images must be grey at the classifier's resolution, else their numbers are None and a
note says so): glyph_fgd, glyph_script (needs MetricContext.options['expect'], a script name),
glyph_memorisation and glyph_diversity.

ink_stats gives two pixel statistics to set beside real glyphs: the ink share, and the mean L1 distance
between image pairs that the mode-seeking term of training.loss rewards.
"""
import dataclasses
import io

import numpy as np
import PIL.Image
import torch

from fsgan.benchmarks.glyphs.classifier import DEFAULT_PATH, load_glyph_classifier
from fsgan.losses.mode_seeking import pair_distance
from metrics.builtin import MEMORISED_PIXEL
from metrics.diversity import intra_cluster_from_features
from metrics.frechet import fid_from_features
from metrics.memorization import memorization, pairwise_distances
from metrics.registry import Column, register

GREY_MODES = ('1', 'L', 'LA')  # PIL modes read as one grey channel

FGD_COLUMNS = (Column('fgd_test', 'FGD test', '.1f', 'down'), Column('fgd_shots', 'FGD shots', '.1f'))
SCRIPT_COLUMNS = (
    Column('script_share', 'Target script', '.1%', 'up',
           note='share of samples the glyph classifier puts in the target script.'),
    Column('classes_covered', 'Characters', '.3g', 'up',
           note="how many of the target script's characters the samples cover."),
    Column('classes_total', 'Characters in the script', '.3g', show=False))
MEMORISED_COLUMNS = (
    Column('memorised_glyph', 'Memorised (glyph)', '.1%', 'down',
           note='share of samples closer, in glyph-classifier features, to a shot than to any test image '
                '(about 1% for held-out real glyphs).'),
    dataclasses.replace(MEMORISED_PIXEL, value=None))  # the same column; here `values` holds it under its key
DIVERSITY_COLUMNS = (Column('diversity_glyph', 'Diversity (glyph)', '.2f', 'up',
                            note='intra-cluster mean pairwise glyph-feature distance.'),)


def ink_stats(images):
    """images uint8 [N, C, H, W] -> dict(ink=share of pixels brighter than mid-grey,
    pair_l1=mean |x_i - x_(i + N//2)| over pixels and the N//2 pairs, in [-1, 1] units as the generator
    outputs them: the image distance of fsgan.losses.mode_seeking.mode_seeking_loss; None for N < 2)."""
    x = images.float() / 127.5 - 1
    return dict(ink=float((x > 0).float().mean()),
                pair_l1=float(pair_distance(x).mean()) if x.shape[0] >= 2 else None)


# ----------------------------------------------------------------------------- the numbers

def fgd_numbers(feats, shot_feats=None, test_feats=None):
    """Features [N, D] of the samples, [K, D] of the shots (None: fewer than 2), [M, D] of the test set (or None)
    -> dict(fgd_test, fgd_shots), None where an input is missing."""
    return dict(fgd_test=None if test_feats is None else fid_from_features(feats, test_feats),
                fgd_shots=None if shot_feats is None else fid_from_features(feats, shot_feats))


def script_numbers(clf, script_logits, char_logits, expect=None):
    """Logits [N, S] and [N, K] of the samples -> dict(script_shares, script_share, classes_covered, classes_total)
    for the expected script `expect` (None: only script_shares). Raises ValueError for a script clf does not know."""
    names = clf.script_names
    scripts = script_logits.argmax(1)
    out = dict(script_shares={name: float((scripts == i).float().mean()) for i, name in enumerate(names)},
               script_share=None, classes_covered=None, classes_total=None)
    if expect is None:
        return out
    if expect not in names:
        raise ValueError(f'unknown script {expect!r}; the glyph classifier knows {", ".join(names)}')
    script = names.index(expect)
    char_script = clf.char_script()
    chars = char_logits.argmax(1)
    out.update(script_share=out['script_shares'][expect],
               classes_covered=int(torch.unique(chars[char_script[chars] == script]).numel()),
               classes_total=int((char_script == script).sum()))
    return out


def memorised_numbers(feats, gen, shot_feats=None, shots=None, test_feats=None):
    """Samples (features [N, D], uint8 images [N, C, R, R]) against shots (features [K, D], images [K, C, R, R];
    None for fewer than 2) and test features [M, D] or None -> dict(memorised_glyph, memorised_pixel)."""
    out = dict(memorised_glyph=None, memorised_pixel=None)
    if shot_feats is None:
        return out
    if test_feats is not None:
        to_shot = pairwise_distances(feats, shot_feats).min(1)
        to_test = pairwise_distances(feats, test_feats).min(1)
        out['memorised_glyph'] = float(np.mean(to_shot < to_test))
    pix = np.asarray(gen).reshape(len(gen), -1).astype(np.float64) / 255
    out['memorised_pixel'] = memorization(pix, np.asarray(shots).reshape(len(shots), -1) / 255.0)['fraction']
    return out


def glyph_metrics(clf, gen, shots=None, test=None, expect=None, requested=None):
    """gen uint8 [N, C, R, R]; shots [K, C, R, R] or None; test [M, C, R, R] or None; expect: script name;
    requested: int64 [N] characters a conditional generator was asked for, or None.

    Returns a dict of the numbers in the module docstring (None where an input is missing or K < 2).
    """
    gen = torch.as_tensor(gen)
    feats, script_logits, char_logits = clf.infer(gen)
    feats = feats.numpy()
    shots = None if shots is None or len(shots) < 2 else torch.as_tensor(shots)
    shot_feats = None if shots is None else clf.features(shots).numpy()
    test_feats = None if test is None else clf.features(torch.as_tensor(test)).numpy()
    out = dict(num=len(gen), **fgd_numbers(feats, shot_feats, test_feats))
    out.update(script_numbers(clf, script_logits, char_logits, expect))
    out['class_match'] = None
    if requested is not None:
        out['class_match'] = float((char_logits.argmax(1) == torch.as_tensor(requested)).float().mean())
    out.update(memorised_numbers(feats, gen, shot_feats, shots, test_feats))
    out['diversity_glyph'] = (None if shot_feats is None
                              else intra_cluster_from_features(feats, shot_feats)['value'])
    return out


# ----------------------------------------------------------------------------- registered metrics

def read_grey(image_set, any_mode=False):
    """uint8 tensor [N, 1, H, W] of an ImageSet whose images are all grey (any_mode: converted to grey whatever
    their mode, e.g. real glyphs stored as RGB) and of one size; else None."""
    arrays = []
    for i in range(len(image_set)):
        with PIL.Image.open(io.BytesIO(image_set.read_bytes(i))) as im:
            if im.mode not in GREY_MODES and not any_mode:
                return None
            arrays.append(np.asarray(im.convert('L'), dtype=np.uint8))
    if len({a.shape for a in arrays}) != 1:
        return None
    return torch.from_numpy(np.stack(arrays)[:, None])


def _describe(image_set):
    with PIL.Image.open(io.BytesIO(image_set.read_bytes(0))) as im:
        return f'{im.mode} {im.size[0]}x{im.size[1]}'


def _samples(ctx):
    """dict(clf, gen, feats [N, D], script_logits, char_logits) of ctx.gen, or a note (str) when the classifier
    does not apply to these images."""
    def make():
        clf = ctx.cached('shared/glyph_classifier', lambda: load_glyph_classifier(DEFAULT_PATH))
        gen = read_grey(ctx.gen)
        if gen is None or tuple(gen.shape[1:]) != (clf.channels, clf.resolution, clf.resolution):
            return (f'glyph metrics not applicable: the glyph classifier reads grey {clf.resolution}x'
                    f'{clf.resolution} images; these are {_describe(ctx.gen)}')
        feats, script_logits, char_logits = clf.infer(gen)
        return dict(clf=clf, gen=gen, feats=feats.numpy(), script_logits=script_logits, char_logits=char_logits)
    return ctx.cached('glyph/gen', make)


def _shots(ctx, clf):
    """(uint8 images [K, 1, R, R], features [K, D]) of ctx.shots, or (None, None) without 2 grey R x R shots."""
    def make():
        shots = None if ctx.shots is None else read_grey(ctx.shots)
        if shots is None or len(shots) < 2 or tuple(shots.shape[2:]) != (clf.resolution, clf.resolution):
            return None, None
        return shots, clf.features(shots).numpy()
    return ctx.cached('glyph/shots', make)


def _test_features(ctx, clf):
    """Features [M, D] of ctx.data (read as grey), or None without --data. ValueError when its images are not
    all of the classifier's size: a test set given must not be dropped without a word."""
    if ctx.data is None:
        return None

    def make():
        test = read_grey(ctx.data, any_mode=True)
        if test is None or tuple(test.shape[2:]) != (clf.resolution, clf.resolution):
            raise ValueError(f'--data {ctx.data.path}: the glyph classifier reads {clf.resolution}x{clf.resolution} '
                             f'images, all of one size; these start with {_describe(ctx.data)}')
        return clf.features(test).numpy()
    return ctx.cached(f'shared/glyph_data/{ctx.data.content_hash()}', make)


def glyph_metric(name, needs, columns, help, headline, recorded=(), size_dependent=False):
    """Register fn(ctx, samples) -> {value key: number} (samples: _samples(ctx)) as the glyph metric `name`
    (size_dependent: as metrics.registry.register's).

    The metric notes itself as not applicable (every column None) to images the glyph classifier does not read,
    adds num_gen, takes its value from `headline` (a key, or a function of the values giving one) and records
    the classifier and the ctx.options named in `recorded`."""
    def wrap(fn):
        def metric(ctx):
            samples = _samples(ctx)
            if isinstance(samples, str):
                return dict(value=None, values={c.source: None for c in columns}, note=samples)
            values = dict(fn(ctx, samples), num_gen=len(ctx.gen))
            options = dict(classifier=DEFAULT_PATH, classifier_sha256=samples['clf'].config.get('weights_sha256'))
            options.update({k: ctx.options[k] for k in recorded})
            key = headline(values) if callable(headline) else headline
            return dict(value=values[key], values=values, options=options)
        register(name, help=help, needs=needs, columns=columns, weights=(DEFAULT_PATH,),
                 size_dependent=size_dependent)(metric)
        return fn
    return wrap


@glyph_metric('glyph_fgd', ('data|shots',), FGD_COLUMNS,
              'glyph benchmark: Fréchet glyph distance (FID formula on glyph-classifier features) vs --data and '
              '--shots-dir (2 shots or more)',
              headline=lambda values: 'fgd_test' if values['fgd_test'] is not None else 'fgd_shots',
              size_dependent=True)
def glyph_fgd_values(ctx, samples):
    clf = samples['clf']
    return fgd_numbers(samples['feats'], _shots(ctx, clf)[1], _test_features(ctx, clf))


@glyph_metric('glyph_script', ('option:expect',), SCRIPT_COLUMNS,
              "glyph benchmark: share of samples in the expected script (--metric-opt expect=SCRIPT) and the "
              "script's characters they cover", headline='script_share', recorded=('expect',))
def glyph_script_values(ctx, samples):
    return script_numbers(samples['clf'], samples['script_logits'], samples['char_logits'], ctx.options['expect'])


@glyph_metric('glyph_memorisation', ('shots',), MEMORISED_COLUMNS,
              'glyph benchmark: share of samples nearer a shot than any --data image (glyph features), and nearer '
              'a shot than any two shots are (pixels)', headline='memorised_glyph')
def glyph_memorisation_values(ctx, samples):
    shots, shot_feats = _shots(ctx, samples['clf'])
    return memorised_numbers(samples['feats'], samples['gen'], shot_feats, shots, _test_features(ctx, samples['clf']))


@glyph_metric('glyph_diversity', ('shots',), DIVERSITY_COLUMNS,
              'glyph benchmark: intra-cluster mean pairwise glyph-feature distance (samples join their nearest '
              'shot)', headline='diversity_glyph')
def glyph_diversity_values(ctx, samples):
    shot_feats = _shots(ctx, samples['clf'])[1]
    return dict(diversity_glyph=None if shot_feats is None
                else intra_cluster_from_features(samples['feats'], shot_feats)['value'])
