"""Emoji-benchmark metrics from the emoji classifier (fsgan.benchmarks.emoji.classifier) and the category probe
(fsgan.benchmarks.emoji.category_probe), registered on import (listed in fsgan.benchmarks.METRIC_MODULES).

Every image set must be 64x64 RGB (a ValueError otherwise). The shipped classifier
(data/emoji/emoji_classifier.pt) and category probe (data/emoji/emoji_category_probe.pt) are loaded once per
MetricContext. Categories come from the probe on the Inception features of MetricContext.features, the same
(memoised, for real sets disk-cached) features FID and KID use.

* emoji_style: share of generated images whose style (vendor) the classifier calls noto / twemoji /
  openmoji (values style_<name>). The target style is the one the majority of the shots is classified
  as (of the test set when no shots are given); `value` is the generated images' share of it.
* emoji_fd: Fréchet distance of the classifier's penultimate features (the FID formula of
  metrics.frechet) between generated images and the test set (`fd`, the value when given) and the
  shots (`fd_shots`).
* emoji_content: content preservation. For the same latents (seeds, truncation) the adapted and the
  source generator each draw one image; `value` is the share of pairs with the same predicted category, and
  `chance` the share that unrelated pairs with the same category shares would match, sum_k p_gen(k) p_source(k)
  (version 2): content is kept only as far as `value` exceeds it.
* emoji_categories: share of each of the 9 categories (values gen_<key> and real_<key>, keys
  classifier.CATEGORY_KEYS) among generated and real images (the test set, else the shots), both as the
  probe predicts them; `value` is the number of categories whose generated share lies within half
  and twice its real share (categories absent from both count as within).
"""
import numpy as np
import torch

from fsgan.benchmarks.emoji.category_probe import DEFAULT_PATH as PROBE_PATH, load_category_probe
from fsgan.benchmarks.emoji.classifier import CATEGORY_KEYS, DEFAULT_PATH, load_emoji_classifier
from metrics.frechet import fid_from_features
from metrics.registry import Column, register


def classifier(ctx):
    """The emoji classifier, loaded once per context (on ctx.device)."""
    return ctx.cached('emoji/classifier', lambda: load_emoji_classifier(DEFAULT_PATH, device=ctx.device))


def image_set_outputs(clf, image_set, batch_size=256):
    """ImageSet of 64x64 RGB images -> (features [N, D], style logits [N, S], category logits [N, K]) float32."""
    outs = [[], [], []]
    for batch in image_set.batches(batch_size):
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
        for acc, t in zip(outs, clf.infer(x, batch_size)):
            acc.append(t)
    return tuple(torch.cat(o) for o in outs)


def outputs(ctx, which):
    """Classifier outputs of ctx.<which> ('gen', 'data' or 'shots'), memoised."""
    return ctx.cached('emoji/outputs/' + which, lambda: image_set_outputs(classifier(ctx), getattr(ctx, which)))


def category_probe(ctx):
    """The emoji category probe, loaded once per context (CPU: it is small). ValueError when the context's
    Inception detector is neither the one the probe was trained on nor NVIDIA's form of the same network: on other
    features its categories would mean nothing."""
    def load():
        probe = load_category_probe(PROBE_PATH)
        det = ctx.detector()
        if det.sha256 != probe.config.get('detector_sha256') and det.kind != 'nvidia':
            raise ValueError(f'the emoji category probe reads the features of {probe.config.get("detector")} '
                             f'(sha256 {str(probe.config.get("detector_sha256"))[:12]}...), not of --detector '
                             f'{det.source} (sha256 {det.sha256[:12]}...); drop --detector for emoji_content and '
                             f'emoji_categories')
        return probe
    return ctx.cached('emoji/category_probe', load)


def check_size(image_set, which):
    """ValueError unless the first image of ImageSet `image_set` (ctx.<which>) is 64x64 (the probe's training size)."""
    h, w = image_set.read(0).shape[:2]
    if (h, w) != (64, 64):
        raise ValueError(f'the emoji category probe needs 64x64 images, got {w}x{h} ({which})')


def categories(ctx, which):
    """Predicted category indices int64 [N] of ctx.<which> ('gen', 'source_gen', 'data' or 'shots'), from the
    probe on its Inception features; memoised."""
    def make():
        check_size(getattr(ctx, which), which)
        return category_probe(ctx).predict(ctx.features(which))
    return ctx.cached('emoji/categories/' + which, make)


def probe_options(ctx):
    """The options that identify the category figures: the probe's sha256 and the detector's."""
    return dict(category_probe_sha256=category_probe(ctx).config['weights_sha256'], **ctx.detector_options())


def shares(indices, count):
    """Share of each of `count` classes among int64 class indices [N] -> list of `count` floats."""
    return (torch.bincount(indices, minlength=count).double() / len(indices)).tolist()


def target_style(ctx):
    """(style name, the set it came from): the majority predicted style of the shots, else of the test set."""
    which = 'shots' if ctx.shots is not None else 'data'
    styles = outputs(ctx, which)[1].argmax(1)
    return classifier(ctx).styles[int(torch.bincount(styles).argmax())], which


@register('emoji_style', needs=('data|shots',), weights=(DEFAULT_PATH,),
          columns=(Column('style_share', 'Target-style share', '.1%', 'up', value='target_share'),
                   Column('style_noto', 'Noto style', '.1%', show=False),
                   Column('style_twemoji', 'Twemoji style', '.1%', show=False),
                   Column('style_openmoji', 'OpenMoji style', '.1%', show=False)),
          help='emoji classifier: share of samples in the target vendor style (the shots\' majority style), '
               'and of every style')
def emoji_style_metric(ctx):
    clf = classifier(ctx)
    gen_shares = shares(outputs(ctx, 'gen')[1].argmax(1), len(clf.styles))
    target, source = target_style(ctx)
    values = {f'style_{name}': s for name, s in zip(clf.styles, gen_shares)}
    values.update(num_gen=len(ctx.gen))
    value = values['target_share'] = values[f'style_{target}']
    return dict(value=value, values=values, options=dict(target_style=target, target_from=source,
                                                         classifier_sha256=clf.config['weights_sha256']))


@register('emoji_fd', needs=('data|shots',), weights=(DEFAULT_PATH,), size_dependent=True,
          columns=(Column('emoji_fd_test', 'emoji-FD test', '.1f', 'down', value='fd'),
                   Column('emoji_fd_shots', 'emoji-FD shots', '.1f', value='fd_shots')),
          help='emoji-FD: Fréchet distance of emoji-classifier features vs --data (test set) and/or --shots-dir')
def emoji_fd_metric(ctx):
    gen = outputs(ctx, 'gen')[0].numpy()
    values = dict(num_gen=len(gen))
    for which, key in (('data', 'fd'), ('shots', 'fd_shots')):
        if getattr(ctx, which) is not None:
            values[key] = fid_from_features(gen, outputs(ctx, which)[0].numpy())
            values[f'num_{which}'] = len(getattr(ctx, which))
    value = values['fd'] if 'fd' in values else values['fd_shots']
    return dict(value=value, values=values, options=dict(classifier_sha256=classifier(ctx).config['weights_sha256']))


@register('emoji_content', needs=('source_gen',), weights=(PROBE_PATH,), version=2,
          columns=(Column('content', 'Content preserved', '.1%', 'up'),
                   Column('content_chance', 'Content by chance', '.1%', value='chance',
                          note='the share of same-category pairs expected if the adapted samples were unrelated to '
                               "the source's (the product of both category distributions, summed); content "
                               'preservation means something only above it.')),
          help='emoji category probe (Inception features): share of samples whose category equals that of the '
               'source network\'s sample for the same latent (needs --source)')
def emoji_content_metric(ctx):
    if len(ctx.gen) != len(ctx.source_gen):
        raise ValueError(f'emoji_content pairs samples by index: {len(ctx.gen)} generated vs '
                         f'{len(ctx.source_gen)} source images')
    gen, src = categories(ctx, 'gen'), categories(ctx, 'source_gen')
    value = float((gen == src).double().mean())
    k = len(CATEGORY_KEYS)
    chance = float(np.dot(shares(gen, k), shares(src, k)))
    return dict(value=value, values=dict(content=value, chance=chance, num_gen=len(gen)),
                options=dict(ctx.memo.get('source/info', {}), **probe_options(ctx)))


@register('emoji_categories', needs=('data|shots',), weights=(PROBE_PATH,),
          columns=(Column('categories_within', 'Categories within ½–2× of real', 'd', 'up', value='within'),),
          help='emoji category probe (Inception features): category shares of samples vs the real set; '
               'value = categories within half and twice their real share (of 9)')
def emoji_categories_metric(ctx):
    real_which = 'data' if ctx.data is not None else 'shots'
    k = len(CATEGORY_KEYS)
    gen = shares(categories(ctx, 'gen'), k)
    real = shares(categories(ctx, real_which), k)
    within = [r / 2 <= g <= 2 * r for g, r in zip(gen, real)]
    values = {f'gen_{key}': g for key, g in zip(CATEGORY_KEYS, gen)}
    values.update({f'real_{key}': r for key, r in zip(CATEGORY_KEYS, real)})
    values.update(within=sum(within), num_gen=len(ctx.gen), num_real=len(getattr(ctx, real_which)))
    options = dict(real=real_which, outside=[key for key, w in zip(CATEGORY_KEYS, within) if not w],
                   **probe_options(ctx))
    return dict(value=sum(within), values=values, options=options)
