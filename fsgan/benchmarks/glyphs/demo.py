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

from fsgan import evaluate
from fsgan.benchmarks.glyphs import GLYPHS, paths

DEFAULT_SOURCE = paths.SOURCE_PICKLE
DEFAULT_TARGET = os.path.join(GLYPHS, 'kannada_shots10.zip')
DEFAULT_TEST = os.path.join(GLYPHS, 'kannada_test.zip')
DEFAULT_KIMG = 2.0      # as in docs/benchmark-glyphs.md; the paper's 20 kimg takes ~15 min here
DEFAULT_LR = 0.03       # FSGAN's best on kannada_val of 0.003 (the paper's), 0.01, 0.03, 0.1 (docs/benchmark-glyphs.md)
# The report's metrics (fsgan.compare.METRICS measures them all); its table: their Columns, in this order.
METRICS = ('glyph_fgd', 'fid', 'sharpness', 'glyph_memorisation', 'memorization', 'glyph_diversity', 'glyph_script')


def write_report(run_dir, row, extra):
    """metrics.json (every number) and metrics.md (one readable table), atomically. Returns the json path."""
    from dnnlib.fileio import atomic_write_bytes, atomic_write_json
    report = dict(extra, **row)
    atomic_write_json(os.path.join(run_dir, 'metrics.json'), report)
    columns = evaluate.table_columns(METRICS)
    lines = evaluate.markdown_table(['Metric', 'Value'], [[c.title, evaluate.cell(c, row) or 'n/a'] for c in columns])
    total = row.get('classes_total')
    lines += ['', f'{row["num_gen"]} samples (psi 1) against {extra["num_test"]} test images'
              f'{"" if total is None else f"; the target script has {total} characters"}.',
              evaluate.legend(columns) + ' Copies of the shots score 100% memorised (glyph). In pixels the '
              'memorisation check is unreliable for thin strokes: a faint or blurry glyph lies closer to every shot '
              'than two distinct glyphs do.', '',
              f'FSGAN, lr {extra["lr"]:g}, {extra["kimg"]:g} kimg, batch 16, seed 0; '
              f'regularisation {extra["regularisation"]}: '
              f'R1 gamma {extra["gamma"]:g}, path length {extra["pl_weight"]:g}, style mixing {extra["style_mixing"]:g}, '
              f'mode seeking {extra["mode_seeking"]:g}{" (hinged)" if extra.get("mode_seeking_hinge") else ""}.']
    atomic_write_bytes(os.path.join(run_dir, 'metrics.md'), ('\n'.join(lines) + '\n').encode())
    return os.path.join(run_dir, 'metrics.json')


def adapt(outdir, source, target, kimg, lr, progress=True):
    """FSGAN run of the demo with the source's own regularisation -> (run folder, training config, regularisation
    {key: value}, {} for a source without a .json)."""
    from fsgan.benchmarks.preset import source_regularisation
    from fsgan.run import run_training
    from fsgan.run_setup import SetupError, setup_training_config
    try:
        reg = source_regularisation(source)
    except ValueError as e:
        raise SetupError(f'--source: {e}') from None
    c = setup_training_config(target, outdir=outdir, resume=source, method='fsgan', shots=10, kimg=kimg, lr=lr,
                              batch=16, protocol='ours', seed=0, snap=0, kimg_per_tick=kimg / 4, device='cpu', **reg)
    return run_training(c, progress=progress), c, reg


TARGET_SCRIPTS = {'kannada': 'kannada', 'devanagari': 'devanagari', 'near': 'latin'}  # shipped split prefix -> script


def target_script(target):
    """The script the adapted samples should be in, from the shipped target's file name (kannada_shots10.zip ->
    'kannada'); None (no script share) for targets of other names."""
    prefix = os.path.basename(os.path.normpath(target)).split('_')[0]
    return TARGET_SCRIPTS.get(prefix)


def run_demo(outdir, source, target, test, kimg, lr, num, num_test, progress=True):
    """Adapt, render and measure. Returns (run_dir, paths dict, metrics row)."""
    import numpy as np
    import tqdm
    from fsgan.benchmarks.ship import recorded_path
    from fsgan.compare import latest, method_metrics, write_shots
    from fsgan.sampling import generate_images, load_generator
    from fsgan.tools.interp import interpolation_video
    from metrics.images import ImageSet
    from torch_utils.image_grid import save_png, tile
    run_dir, c, reg = adapt(outdir, source, target, kimg, lr, progress)
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
    gen_dir = evaluate.write_samples(G, os.path.join(run_dir, 'metric_samples'), range(num), trunc=1.0, batch=1)
    shots_dir = write_shots(run_dir, np.load(os.path.join(run_dir, 'target_shots.npy')))
    stages.update()
    test_set = ImageSet(test, limit=num_test or None)  # 0: every test image
    row = method_metrics(gen_dir, shots_dir, test_set, dict(num=num, faces=False, inception=True,
                                                            expect=target_script(target)),
                         fig_dir=run_dir, tag='demo')
    stages.update()
    stages.close()
    extra = dict(network=recorded_path(network),
                 network_sha256=sha, source=source, test_set=test, num_test=len(test_set),
                 lr=c.lr, kimg=c.kimg, gamma=c.gamma, pl_weight=c.pl_weight, style_mixing=c.style_mixing,
                 mode_seeking=c.losses.get('mode_seeking', {}).get('weight', 0.0),
                 mode_seeking_hinge=c.losses.get('mode_seeking', {}).get('hinge', False),
                 regularisation="the source's own" if reg else "scripts/train.py's defaults (no source .json)")
    paths['metrics'] = write_report(run_dir, row, extra)
    return run_dir, paths, row
