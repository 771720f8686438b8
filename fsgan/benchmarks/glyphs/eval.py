"""The glyph report of a generator (scripts/glyph_eval.py): script shares, character coverage, FGD, ink.

Samples are seeds seed..seed+num-1 rendered as fsgan.sampling renders them; the glyph classifier
(fsgan.benchmarks.glyphs.classifier, data/glyphs/glyph_classifier.pt by default) reads them and the test set
(and optionally the target shots) for fsgan.benchmarks.glyphs.metrics.
"""
import os

from fsgan.benchmarks.glyphs import paths
from fsgan.tools.errors import OptionError


def _check_size(what, option, shape, clf):
    """OptionError naming `option` unless images of `shape` [.., C, H, W] fit the classifier's resolution."""
    if tuple(shape[-2:]) != (clf.resolution, clf.resolution):
        raise OptionError(f'{what} are {shape[-2]}x{shape[-1]} pixels; the glyph classifier reads '
                          f'{clf.resolution}x{clf.resolution} glyphs', option)


def _load_inputs(G, test_zip, classifier_path, expect, num_test, shots_zip):
    """(classifier, test images, shots or None), each checked against the classifier before any generation."""
    from fsgan.benchmarks.glyphs.classifier import load_dataset_zip, load_glyph_classifier
    clf = load_glyph_classifier(classifier_path or paths.CLASSIFIER)
    if expect not in clf.script_names:
        raise OptionError(f'unknown script {expect!r}; the classifier knows {", ".join(clf.script_names)}',
                          '--expect')
    resolution = getattr(G, 'img_resolution', clf.resolution)
    _check_size('the network\'s images', '--network', (resolution, resolution), clf)
    real, _labels = load_dataset_zip(test_zip, limit=num_test or None)
    _check_size('the test images', '--test', real.shape, clf)
    shots = load_dataset_zip(shots_zip)[0] if shots_zip else None
    if shots is not None:
        _check_size('the shots', '--shots', shots.shape, clf)
    return clf, real, shots


def glyph_report(G, test_zip, num=1000, trunc=1.0, seed=0, classifier_path=None, expect='latin', num_test=0,
                 shots_zip=None, device='cpu'):
    """Samples of G (seeds seed..seed+num-1) vs the test zip (its first num_test images; 0 = all) -> dict of script
    shares, coverage and FGD; with shots_zip also FGD to the shots, memorisation and intra-cluster diversity.

    Raises OptionError (naming the option) for a script the classifier does not know, or a network,
    test set or shots whose images are not the classifier's size; all checked before generating.
    """
    import torch
    from fsgan.benchmarks.glyphs.metrics import glyph_metrics, ink_stats
    from fsgan.sampling import generate_images, seed_classes
    clf, real, shots = _load_inputs(G, test_zip, classifier_path, expect, num_test, shots_zip)
    images = generate_images(G, list(range(seed, seed + num)), trunc=trunc, device=device)   # [N, H, W, C] uint8
    fake = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    requested = seed_classes(range(seed, seed + num), G.c_dim) if G.c_dim > 0 else None  # generate_images' classes
    m = glyph_metrics(clf, fake, shots=shots, test=real, expect=expect, requested=requested)
    out = dict(num=num, trunc=trunc, script_shares=m['script_shares'], expected_script=expect,
               classes_covered=m['classes_covered'], classes_total=m['classes_total'], fgd=m['fgd_test'],
               class_match=m['class_match'],
               test_set=os.path.relpath(test_zip, paths.ROOT), test_size=len(real))
    for name, batch in (('samples', fake), ('test', real)):
        out.update({f'{key}_{name}': value for key, value in ink_stats(batch).items()})
    if shots_zip:
        out.update(shots=os.path.relpath(shots_zip, paths.ROOT), fgd_shots=m['fgd_shots'],
                   memorised_glyph=m['memorised_glyph'], diversity_glyph=m['diversity_glyph'])
    return out


def network_glyph_report(network, adapter=None, device='cpu', **options):
    """glyph_report of a network (path, URL or short name; an adapter applied when given) plus its name and sha256.

    Raises NetworkLoadError / AdapterError (fsgan.sampling.load_generator) and glyph_report's OptionErrors.
    """
    from fsgan.sampling import load_generator
    G, sha = load_generator(network, adapter, device)
    report = glyph_report(G, device=device, **options)
    report.update(network=network, sha256=sha)
    return report
