"""The emoji demo (scripts/demo.py, its default): FSGAN adapts the shipped 64-px Noto emoji source to the 10
near (Twemoji) shots under the paper's protocol, with a length that fits a few CPU minutes (and the G_ema half-life
scaled to it, ema_half_life).

Everything lands in a new numbered run folder under --outdir:

  network-snapshot-*.pkl, adapter-*.pt, ...   the training run (see README, "A run folder")
  before_after.png     the 10 shots, then the same BEFORE_AFTER_SEEDS from the source and from the adapted G (psi 0.8)
  samples_trunc0.8.png 64 samples of the adapted G at psi 0.8
  interpolation.mp4    looping interpolation in w
  metrics.json/.md     the same metrics for the unadapted source and the adapted G, side by side: FID/KID and
                       emoji-FD against the near test set, target-style share, content preservation (same category
                       for the same latent as the source), diversity, memorisation (--num samples, psi 1); beside
                       them the same metrics of the target's held-out validation images (reference_split): what
                       real images that copy nothing score
"""
import os

from fsgan import evaluate

from . import paths
from .paths import ROOT

DEFAULT_SOURCE = os.path.join(ROOT, paths.SOURCE_PICKLE)
DEFAULT_TARGET = os.path.join(ROOT, paths.DATA_DIR, 'near_shots10.zip')
DEFAULT_TEST = os.path.join(ROOT, paths.DATA_DIR, 'near_test.zip')
# The paper's 20 kimg is about 20 minutes of training on 2 CPU cores at 64 px (FSGAN on the emoji64 net: about
# 58 s per kimg); 4 kimg keeps the whole demo, set-up included, under 10 minutes (data/emoji/README.md, "Demo").
DEFAULT_KIMG = 4.0
DEFAULT_LR = 0.003      # the paper's
DEFAULT_NUM = 200       # samples per network for the metrics
DEFAULT_NUM_TEST = 0    # test images for the metrics: all (a prefix in name order is code-point order, not a sample)
BEFORE_AFTER_SEEDS = tuple(range(16))
REAL_COLUMN = 'Real (held-out val)'
# The report's metrics; its table shows their Columns in this order.
METRICS = ('fid', 'kid', 'emoji_fd', 'emoji_style', 'emoji_content', 'intra_inception', 'memorization',
           'nearest_real')


def ema_half_life(kimg, shots=10):
    """The paper protocol's G_ema half-life scaled to a run of `kimg` (kimg): 10 kimg over the paper's 20 (16 at
    <= 5 shots), so that G_ema keeps the same share of the source at the end (a quarter at 20 kimg) however short
    the demo is. With the paper's 10 kimg a 4-kimg run would end with three quarters of G_ema still the source."""
    from fsgan import protocol
    return protocol.PROTOCOLS['paper']['ema_kimg'] * kimg / protocol.paper_kimg(shots)


def adapt(outdir, source, target, kimg, lr, progress=True):
    """The demo's FSGAN run (paper protocol with its G_ema half-life scaled to the length, ema_half_life; the
    source's own regularisation) -> (run folder, training config)."""
    from fsgan.benchmarks.preset import source_regularisation
    from fsgan.run import run_training
    from fsgan.run_setup import SetupError, setup_training_config
    try:
        reg = source_regularisation(source)
    except ValueError as e:
        raise SetupError(f'--source: {e}') from None
    c = setup_training_config(target, outdir=outdir, resume=source, method='fsgan', shots=10, kimg=kimg, lr=lr,
                              protocol='paper', ema_kimg=ema_half_life(kimg), seed=0, snap=0,
                              kimg_per_tick=kimg / 4, device='cpu', **reg)
    return run_training(c, progress=progress), c


def before_after(G_source, G, shots, path):
    """The figure: shots uint8 [K, H, W, C], then the source's and the adapted G's BEFORE_AFTER_SEEDS (psi 0.8)."""
    from fsgan.sampling import generate_images
    from fsgan.tools.figure import labeled_grid
    from torch_utils.image_grid import save_png
    rows = [list(shots), list(generate_images(G_source, list(BEFORE_AFTER_SEEDS), trunc=0.8)),
            list(generate_images(G, list(BEFORE_AFTER_SEEDS), trunc=0.8))]
    save_png(labeled_grid(rows, row_labels=['target shots', 'source', 'adapted']), path)


def reference_split(test):
    """The validation split beside a shipped test split (<prefix>_test.zip -> <prefix>_val.zip), or None."""
    folder, name = os.path.split(os.path.abspath(test))
    if not name.endswith('_test.zip'):
        return None
    val = os.path.join(folder, name[:-len('_test.zip')] + '_val.zip')
    return val if os.path.isfile(val) else None


def measure(run_dir, G_source, G, test, num, num_test, progress=True):
    """(source row, adapted row, real row or None, test images used): the METRICS of both networks' first `num`
    seeds (psi 1) against the run's shots and the test set; content preservation pairs the adapted G's samples
    with the source's. The real row: the first `num` images of the test split's validation split
    (reference_split) measured the same way (compare's reference row; no content preservation: no latent)."""
    import numpy as np
    from fsgan.benchmarks.ship import recorded_path
    from fsgan.compare import method_metrics, write_shots
    from metrics.images import ImageSet
    ms = dict(num=num, faces=False, inception=True, metrics=METRICS)
    shots_dir = write_shots(run_dir, np.load(os.path.join(run_dir, 'target_shots.npy')))
    test_set = ImageSet(test, limit=num_test or None)
    dirs = {name: evaluate.write_samples(net, os.path.join(run_dir, 'metric_samples', name), range(num), batch=1,
                                         progress=progress)
            for name, net in (('source', G_source), ('adapted', G))}
    shared = {}
    no_latent = dict(ms, metrics=[m for m in METRICS if m != 'emoji_content'])
    source = method_metrics(dirs['source'], shots_dir, test_set, no_latent, fig_dir=run_dir, tag='source',
                            shared=shared, progress=progress)
    adapted = method_metrics(dirs['adapted'], shots_dir, test_set, ms, fig_dir=run_dir, tag='adapted',
                             shared=shared, source_dir=dirs['source'], progress=progress)
    val = reference_split(test)
    real = None if val is None else method_metrics(val, shots_dir, test_set, no_latent, fig_dir=run_dir, tag='real',
                                                   shared=shared, progress=progress)
    same_keys = dict.fromkeys(adapted)   # every row has the same keys
    real = None if real is None else dict(same_keys, **real, reference=recorded_path(val))
    return dict(same_keys, **source), adapted, real, len(test_set)


def test_label(test):
    """How the report names a test set: 'near (Twemoji)' / 'far (OpenMoji)' for the shipped ones, else its file."""
    name = os.path.basename(os.path.normpath(test))
    return {'near': 'near (Twemoji)', 'far': 'far (OpenMoji)'}.get(name.split('_')[0], name)


def write_report(run_dir, source, adapted, extra, real=None):
    """metrics.json (every number of the rows) and metrics.md (one table: metric, source, adapted, and the real
    validation images when `real` is given), atomically. Returns the json path."""
    from dnnlib.fileio import atomic_write_bytes, atomic_write_json
    atomic_write_json(os.path.join(run_dir, 'metrics.json'), dict(extra, source=source, adapted=adapted, real=real))
    columns = evaluate.table_columns(METRICS)
    rows = [source, adapted] + ([real] if real is not None else [])
    body = [[c.title] + [evaluate.cell(c, row) or 'n/a' for row in rows] for c in columns]
    lines = evaluate.markdown_table(['Metric', 'Source (unadapted)', 'Adapted (FSGAN)']
                                    + ([REAL_COLUMN] if real is not None else []), body)
    lines += ['', f'{adapted["num_gen"]} samples per network (seeds 0..{adapted["num_gen"] - 1}, psi 1) against '
              f'{extra["num_test"]} {test_label(extra["test_set"])} test images and the 10 shots. FSGAN, protocol paper, lr '
              f'{extra["lr"]:g}, {extra["kimg"]:g} kimg, G_ema half-life {extra["ema_kimg"]:g} kimg (the paper\'s 10 of '
              f'20 kimg, scaled to the length), batch {extra["batch"]}, seed 0.']
    if real is not None:
        short = (' Fréchet distances are left out: they depend on the set size, and it has fewer images than the '
                 'samples.' if real['num_gen'] < adapted['num_gen'] else '')
        lines.append(f'{REAL_COLUMN}: the first {real["num_gen"]} images of {os.path.basename(real["reference"])} '
                     f'(real target images, none of them a shot or a test image) measured as if they were samples: '
                     f'what images that copy nothing score.{short}')
    lines.append(evaluate.legend(columns))
    atomic_write_bytes(os.path.join(run_dir, 'metrics.md'), ('\n'.join(lines) + '\n').encode())
    return os.path.join(run_dir, 'metrics.json')


def run_demo(outdir, source=DEFAULT_SOURCE, target=DEFAULT_TARGET, test=DEFAULT_TEST, kimg=DEFAULT_KIMG,
             lr=DEFAULT_LR, num=DEFAULT_NUM, num_test=DEFAULT_NUM_TEST, progress=True):
    """Adapt, draw and measure (num_test 0: every test image). Returns (run_dir, paths dict, adapted row)."""
    import numpy as np
    import tqdm
    from fsgan.compare import latest
    from fsgan.sampling import generate_images, load_generator
    from fsgan.tools.interp import interpolation_video
    from torch_utils.image_grid import save_png, tile
    if source == DEFAULT_SOURCE and not os.path.isfile(source):
        from fsgan.run_setup import SetupError
        raise SetupError(f'--source {source}: no such file; the emoji source is made by scripts/train.py and '
                         f'shipped as {paths.SOURCE_PICKLE} (data/emoji/README.md)')
    run_dir, c = adapt(outdir, source, target, kimg, lr, progress)
    stages = tqdm.tqdm(total=4, desc='figures, video, metrics', unit='stage', disable=not progress)
    network = latest(run_dir, 'network-snapshot-', '.pkl')
    G, sha = load_generator(network)
    G_source, source_sha = load_generator(source)
    out = dict(before_after=os.path.join(run_dir, 'before_after.png'),
               samples=os.path.join(run_dir, 'samples_trunc0.8.png'), video=os.path.join(run_dir, 'interpolation.mp4'))
    shots = np.load(os.path.join(run_dir, 'target_shots.npy')).transpose(0, 2, 3, 1)
    before_after(G_source, G, shots, out['before_after'])
    save_png(tile(generate_images(G, list(range(64)), trunc=0.8), cols=8), out['samples'])
    stages.update()
    interpolation_video(G, [[1, 5, 9, 13]], out['video'], frames_per_transition=16, space='w', trunc=0.8, fps=24,
                        factor=4)
    stages.update()
    source_row, adapted_row, real_row, n_test = measure(run_dir, G_source, G, test, num, num_test, progress)
    stages.update(2)
    stages.close()
    extra = dict(network=network, network_sha256=sha, source=source, source_sha256=source_sha, test_set=test,
                 num_test=n_test, lr=c.lr, kimg=c.kimg, ema_kimg=c.ema_kimg, batch=c.batch, protocol=c.protocol)
    out['metrics'] = write_report(run_dir, source_row, adapted_row, extra, real_row)
    return run_dir, out, adapted_row
