"""The README demo (scripts/demo.py): FSGAN few-shot adaptation of the shipped glyph source on the CPU, then samples,
an interpolation video and a metrics report.

The source is the 32x32 grayscale StyleGAN2 pretrained on Latin glyphs (data/glyphs/source_glyph32.pkl);
the targets are the 10 bundled Kannada shots (data/glyphs/kannada_shots10.zip), measured against the
held-out Kannada test set (data/glyphs/kannada_test.zip). Everything lands in a new numbered folder
under --outdir:

  network-snapshot-*.pkl, adapter-*.pt, ...   the training run (see README, "A run folder")
  samples_trunc0.8.png                        64 samples at psi 0.8
  interpolation.mp4                           looping interpolation in w
  metrics.json, metrics.md                    FGD and FID vs the test set and the shots, sharpness,
                                              memorisation, diversity, script share (--num samples, psi 1)
"""
import os

from fsgan.benchmarks.glyphs.preset import ROOT  # noqa: F401  (re-exported for scripts/demo.py)

GLYPHS = os.path.join(ROOT, 'data', 'glyphs')
DEFAULT_SOURCE = os.path.join(GLYPHS, 'source_glyph32.pkl')
DEFAULT_TARGET = os.path.join(GLYPHS, 'kannada_shots10.zip')
DEFAULT_TEST = os.path.join(GLYPHS, 'kannada_test.zip')
DEFAULT_KIMG = 2.0      # as in docs/benchmark-glyphs.md; the paper's 20 kimg takes ~15 min here
DEFAULT_LR = 0.03       # FSGAN's best on kannada_val of 0.003 (the paper's), 0.01, 0.03, 0.1 (docs/benchmark-glyphs.md)


def write_report(run_dir, row, extra):
    """metrics.json (every number) and metrics.md (one readable table), atomically. Returns the json path."""
    from dnnlib.fileio import atomic_write_bytes, atomic_write_json
    report = dict(extra, **row)
    atomic_write_json(os.path.join(run_dir, 'metrics.json'), report)

    def f(key, pattern):
        return 'n/a' if row.get(key) is None else pattern.format(row[key])
    lines = ['| Metric | Value |', '|:---|---:|',
             f'| FGD vs test set ↓ | {f("fgd_test", "{:.1f}")} |',
             f'| FGD vs shots | {f("fgd_shots", "{:.1f}")} |',
             f'| FID vs test set ↓ | {f("fid_test", "{:.1f}")} |',
             f'| FID vs shots | {f("fid_shots", "{:.1f}")} |',
             f'| Sharpness ↑ | {f("sharpness_mean", "{:.3f}")} ± {f("sharpness_std", "{:.3f}")} |',
             f'| Memorised (nearer a shot than any test glyph) ↓ | {f("memorised_glyph", "{:.1%}")} |',
             f'| Memorised (Inception) ↓ | {f("memorised_inception", "{:.1%}")} |',
             f'| Memorised (pixels, see below) | {f("memorised_pixel", "{:.1%}")} |',
             f'| Diversity (intra-cluster glyph distance) ↑ | {f("diversity_glyph", "{:.2f}")} |',
             f'| Samples in the target script | {f("script_share", "{:.1%}")} |',
             f'| Target characters covered | {f("classes_covered", "{:d}")} of {f("classes_total", "{:d}")} |',
             '', f'{row["num_gen"]} samples (psi 1) against {extra["num_test"]} test images. Memorised (first row): '
             'share of samples whose nearest shot is nearer, in glyph-classifier features, than their nearest test '
             'glyph; held-out real glyphs score about 1%, copies of the shots 100%. Inception and pixel rows: share '
             'closer to a shot than any two shots are to each other. In pixels this check is unreliable for '
             'thin strokes: a faint or blurry glyph lies closer to every shot than two distinct glyphs do.', '',
             f'FSGAN, lr {extra["lr"]:g}, {extra["kimg"]:g} kimg, batch 16, seed 0; '
             f'regularisation {extra["regularisation"]}: '
             f'R1 gamma {extra["gamma"]:g}, path length {extra["pl_weight"]:g}, style mixing {extra["style_mixing"]:g}, '
             f'mode seeking {extra["mode_seeking"]:g}{" (hinged)" if extra.get("mode_seeking_hinge") else ""}.']
    atomic_write_bytes(os.path.join(run_dir, 'metrics.md'), ('\n'.join(lines) + '\n').encode())
    return os.path.join(run_dir, 'metrics.json')


def run_demo(outdir, source, target, test, kimg, lr, num, num_test, progress=True):
    """Adapt, render and measure. Returns (run_dir, paths dict, metrics row)."""
    import tqdm
    from fsgan.tools.interp import interpolation_video
    from metrics.images import ImageSet
    from fsgan.compare import latest, method_metrics, write_shots
    from fsgan.sampling import generate_images, load_generator
    from fsgan.benchmarks.glyphs.preset import source_regularisation
    from fsgan.run import run_training
    from fsgan.run_setup import SetupError, setup_training_config
    from torch_utils.image_grid import save_png, tile
    import numpy as np

    try:
        reg = source_regularisation(source)
    except ValueError as e:
        raise SetupError(f'--source: {e}') from None
    c = setup_training_config(target, outdir=outdir, resume=source, method='fsgan', shots=10, kimg=kimg, lr=lr,
                              batch=16, protocol='ours', seed=0, snap=0, kimg_per_tick=kimg / 4, device='cpu', **reg)
    run_dir = run_training(c, progress=progress)
    stages = tqdm.tqdm(total=4, desc='samples, video, metrics', unit='stage', disable=not progress)
    network = latest(run_dir, 'network-snapshot-', '.pkl')
    G, sha = load_generator(network)
    paths = dict(samples=os.path.join(run_dir, 'samples_trunc0.8.png'),
                 video=os.path.join(run_dir, 'interpolation.mp4'))
    save_png(tile(generate_images(G, list(range(64)), trunc=0.8), cols=8), paths['samples'])
    stages.update()
    interpolation_video(G, [[1, 5, 9, 13]], paths['video'], frames_per_transition=16, space='w', trunc=0.8,
                        fps=24, factor=4)
    stages.update()
    gen = generate_images(G, list(range(num)), trunc=1.0)
    gen_dir = os.path.join(run_dir, 'metric_samples')
    os.makedirs(gen_dir, exist_ok=True)
    for seed, img in enumerate(gen):
        save_png(img, os.path.join(gen_dir, f'seed{seed:04d}.png'))
    shots = np.load(os.path.join(run_dir, 'target_shots.npy'))
    shots_dir = write_shots(run_dir, shots)
    stages.update()
    ms = dict(num=num, faces=False, inception=True, expect='kannada')
    test_set = ImageSet(test, limit=num_test)
    row = method_metrics(gen_dir, gen, shots_dir, shots, test_set, ms, fig_dir=run_dir, tag='demo')
    stages.update()
    stages.close()
    extra = dict(network=os.path.relpath(network, ROOT) if network.startswith(ROOT) else network,
                 network_sha256=sha, source=source, test_set=test, num_test=len(test_set),
                 lr=c.lr, kimg=c.kimg, gamma=c.gamma, pl_weight=c.pl_weight, style_mixing=c.style_mixing,
                 mode_seeking=c.losses.get('mode_seeking', {}).get('weight', 0.0),
                 mode_seeking_hinge=c.losses.get('mode_seeking', {}).get('hinge', False),
                 regularisation="the source's own" if reg else "scripts/train.py's defaults (no source .json)")
    paths['metrics'] = write_report(run_dir, row, extra)
    return run_dir, paths, row
