"""Glyph-domain numbers for generated 32x32 glyphs, all from the glyph classifier (metrics.glyph_classifier).

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

ink_stats gives two pixel statistics to set beside real glyphs: the ink share, and the mean L1 distance
between image pairs that the mode-seeking term of training.loss rewards.
"""
import numpy as np
import torch

from metrics.diversity import intra_cluster_from_features
from metrics.frechet import fid_from_features
from metrics.memorization import memorization, pairwise_distances
from fsgan.losses.mode_seeking import pair_distance


def ink_stats(images):
    """images uint8 [N, C, H, W] -> dict(ink=share of pixels brighter than mid-grey,
    pair_l1=mean |x_i - x_(i + N//2)| over pixels and the N//2 pairs, in [-1, 1] units as the generator
    outputs them: the image distance of fsgan.losses.mode_seeking.mode_seeking_loss; None for N < 2)."""
    x = images.float() / 127.5 - 1
    return dict(ink=float((x > 0).float().mean()),
                pair_l1=float(pair_distance(x).mean()) if x.shape[0] >= 2 else None)


def glyph_metrics(clf, gen, shots=None, test=None, expect=None, requested=None):
    """gen uint8 [N, C, R, R]; shots [K, C, R, R] or None; test [M, C, R, R] or None; expect: script name;
    requested: int64 [N] characters a conditional generator was asked for, or None.

    Returns a dict of the numbers in the module docstring (None where an input is missing or K < 2).
    """
    gen = torch.as_tensor(gen)
    feats, script_logits, char_logits = clf.infer(gen)
    scripts = script_logits.argmax(1)
    out = dict(num=len(gen), fgd_test=None, fgd_shots=None, script_share=None, classes_covered=None,
               classes_total=None, class_match=None, memorised_glyph=None, memorised_pixel=None, diversity_glyph=None,
               script_shares={name: float((scripts == i).float().mean()) for i, name in enumerate(clf.script_names)})
    if requested is not None:
        out['class_match'] = float((char_logits.argmax(1) == torch.as_tensor(requested)).float().mean())
    test_feats = None
    if test is not None:
        test_feats = clf.features(torch.as_tensor(test))
        out['fgd_test'] = fid_from_features(feats.numpy(), test_feats.numpy())
    if expect is not None:
        names = clf.script_names
        if expect not in names:
            raise ValueError(f'unknown script {expect!r}; the glyph classifier knows {", ".join(names)}')
        script = names.index(expect)
        char_script = clf.char_script()
        chars = char_logits.argmax(1)
        out['script_share'] = out['script_shares'][expect]
        out['classes_covered'] = int(torch.unique(chars[char_script[chars] == script]).numel())
        out['classes_total'] = int((char_script == script).sum())
    if shots is not None and len(shots) >= 2:
        shots = torch.as_tensor(shots)
        shot_feats = clf.features(shots)
        out['fgd_shots'] = fid_from_features(feats.numpy(), shot_feats.numpy())
        if test_feats is not None:
            to_shot = pairwise_distances(feats.numpy(), shot_feats.numpy()).min(1)
            to_test = pairwise_distances(feats.numpy(), test_feats.numpy()).min(1)
            out['memorised_glyph'] = float(np.mean(to_shot < to_test))
        pix = gen.reshape(len(gen), -1).numpy().astype(np.float64) / 255
        out['memorised_pixel'] = memorization(pix, shots.reshape(len(shots), -1).numpy() / 255.0)['fraction']
        out['diversity_glyph'] = intra_cluster_from_features(feats.numpy(), shot_feats.numpy())['value']
    return out
