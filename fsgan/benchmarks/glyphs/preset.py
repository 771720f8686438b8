"""`compare.py --preset glyphs`: every method on the shipped glyph benchmark, over targets x shots x seeds.

Each (target, shots, seed) cell is an ordinary comparison folder, outdir/<target>-<shots>shot-seed<seed>/
(resumable like any compare.py run); the preset then writes outdir/benchmark.csv and benchmark.md with
mean ± std over seeds per (target, shots, method), and outdir/figure-<target>-<shots>shot.png, the
comparison figure of the first seed (target shots, then a row per method).
"""
import json
import os
import shutil

import numpy as np

from dnnlib.fileio import atomic_write_bytes
from fsgan import evaluate
from fsgan.benchmarks.glyphs import GLYPHS, ROOT, paths

SOURCE = paths.SOURCE_PICKLE
TARGETS = {  # name -> (file prefix in data/glyphs, script the adapted samples should be in)
    'near': ('near', 'latin'),
    'far': ('kannada', 'kannada'),
}
SHOTS = (5, 10, 25)
SEEDS = (0, 1, 2)
KIMG = 2.0          # per run; the paper's 20 kimg is ~20 min per run on 2 CPU cores at this size
BATCH = 16
NUM = 500           # samples per method for the metrics
NUM_TEST = 1000     # real images of the split used
# The table's metrics; COLUMNS: the Columns (metrics.registry) of their numbers that tables show, each reported
# as mean ± std over seeds (compare's rows hold them under these keys).
METRICS = ('glyph_fgd', 'glyph_memorisation', 'glyph_diversity', 'glyph_script', 'sharpness')
COLUMNS = tuple(evaluate.table_columns(METRICS))


def cell_name(target, shots, seed):
    return f'{target}-{shots}shot-seed{seed}'


def parse_list(text, cast, option):
    """'5,10,25' -> (5, 10, 25); raises ValueError naming the option."""
    try:
        out = tuple(cast(v.strip()) for v in text.split(',') if v.strip())
    except ValueError:
        raise ValueError(f'{option} {text!r}: expected a comma-separated list') from None
    if not out:
        raise ValueError(f'{option}: empty list')
    return out


REGULARISATION_KEYS = ('gamma', 'pl_weight', 'style_mixing', 'mode_seeking', 'mode_seeking_hinge')


def source_regularisation(source=None):
    """The regularisation the source was pretrained with, {key: value} for the REGULARISATION_KEYS its .json
    (beside the .pkl, as ship_glyph_source.py writes it) records under training_options; {} (scripts/train.py's
    defaults) for a source without one.

    Every adaptation run of the preset and the demo uses them: on the validation splits of the earlier source
    (its first training stage), its own settings beat train.py's defaults (R1 gamma 10, path length 2, style
    mixing 0.9, which the glyph source never saw) for FSGAN, TransferGAN and FreezeD on both targets; the
    shipped source's last-stage settings (mode seeking 2) were not re-validated (docs/benchmark-glyphs.md,
    "Choosing the settings")."""
    meta = os.path.splitext(source or SOURCE)[0] + '.json'
    if not os.path.isfile(meta):
        return {}
    try:
        with open(meta) as f:
            options = json.load(f).get('training_options', {})
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f'{meta}: not a source description ({e}); remove it or re-ship the source') from None
    return {k: float(options[k]) for k in REGULARISATION_KEYS if k in options}


def cells(targets=tuple(TARGETS), shots=SHOTS, seeds=SEEDS):
    """[(target, shots, seed)] in run order: seeds innermost, so every setting gets its first seed early."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f'--preset-targets: unknown {", ".join(unknown)}; choose from {", ".join(TARGETS)}')
    return [(t, k, s) for t in targets for k in shots for s in seeds]


def cell_config(outdir, target, shots, seed, methods, kimg=KIMG, split='test', source=None, device=None,
                num=NUM, num_test=NUM_TEST, protocol='ours'):
    """compare.setup_compare(...) of one cell; split 'val' measures against the validation split (tuning).

    protocol 'ours' (batch BATCH) is what the documented glyph tables ran under; another protocol uses its own batch.
    """
    from fsgan.compare import setup_compare
    prefix, script = TARGETS[target]
    source = source or SOURCE
    shots_zip = os.path.join(GLYPHS, f'{prefix}_shots{shots}.zip')
    eval_zip = os.path.join(GLYPHS, f'{prefix}_{split}.zip')
    for path in (source, shots_zip, eval_zip):
        if not os.path.isfile(path):
            raise ValueError(f'{path}: missing; the glyph preset needs the files shipped in data/glyphs')
    return setup_compare(os.path.join(outdir, cell_name(target, shots, seed)), source=source, target_dir=shots_zip,
                         shots=shots, methods=methods, kimg=kimg, batch=BATCH if protocol == 'ours' else None, protocol=protocol,
                         seed=seed, tick=kimg / 2, snap=1,
                         test_dir=eval_zip, num=num, num_test=num_test, device=device, inception=False, expect=script,
                         train_options=source_regularisation(source))


def aggregate(results):
    """results {(target, shots, seed): rows of compare.run_compare} -> rows of mean/std per (target, shots, method)."""
    groups = {}
    for (target, shots, seed), rows in results.items():
        for r in rows:
            groups.setdefault((target, shots, r['method']), []).append(r)
    out = []
    for (target, shots, method), rows in groups.items():
        row = dict(target=target, shots=shots, method=method, seeds=len(rows),
                   trainable_params=rows[0].get('trainable_params'))
        for c in COLUMNS:
            values = [r[c.key] for r in rows if r.get(c.key) is not None]
            row[c.key + '_mean'] = float(np.mean(values)) if values else None
            row[c.key + '_std'] = float(np.std(values)) if values else None
        out.append(row)
    return out


def write_report(outdir, rows, header):
    """benchmark.csv (every number) and benchmark.md (a table per target and shots, then the columns' legend),
    atomically."""
    from fsgan.compare import TRAINABLE_COLUMN, write_csv
    fields = ['target', 'shots', 'method', 'seeds', 'trainable_params']
    fields += [c.key + s for c in COLUMNS for s in ('_mean', '_std')]
    write_csv(os.path.join(outdir, 'benchmark.csv'), rows, fields)
    lines = [header, '']
    for target, shots in sorted({(r['target'], r['shots']) for r in rows}):
        block = [r for r in rows if r['target'] == target and r['shots'] == shots]
        body = [[r['method'], TRAINABLE_COLUMN.format(r['trainable_params'])]
                + [evaluate.mean_std(c, r[c.key + '_mean'], r[c.key + '_std']) for c in COLUMNS]
                for r in block]
        lines += [f'### {target}, {shots} shots ({block[0]["seeds"]} seeds)', '']
        lines += evaluate.markdown_table(['Method', 'Trainable'] + [c.title for c in COLUMNS], body) + ['']
    lines.append(evaluate.legend(COLUMNS))
    atomic_write_bytes(os.path.join(outdir, 'benchmark.md'), ('\n'.join(lines) + '\n').encode())


def run_preset(outdir, methods=None, targets=tuple(TARGETS), shots=SHOTS, seeds=SEEDS, kimg=KIMG, split='test',
               device=None, progress=True, num=NUM, num_test=NUM_TEST, source=None, protocol='ours'):
    """Run (or continue) every cell, then write the aggregate report. Returns its rows."""
    from fsgan.compare import run_compare
    todo = cells(targets, shots, seeds)
    configs = {c: cell_config(outdir, *c, methods=methods, kimg=kimg, split=split, device=device, num=num,
                              num_test=num_test, source=source, protocol=protocol) for c in todo}
    results = {}
    for i, cell in enumerate(todo):
        print(f'[preset glyphs] cell {i + 1}/{len(todo)}: {cell_name(*cell)}')
        result = run_compare(configs[cell], progress=progress)
        results[cell] = result['rows']
        target, k, seed = cell
        if seed == seeds[0]:
            shutil.copyfile(result['figure'], os.path.join(outdir, f'figure-{target}-{k}shot.png'))
    rows = aggregate(results)
    source = source or SOURCE
    reg = ', '.join(f'{k} {v:g}' for k, v in source_regularisation(source).items()) or "scripts/train.py's defaults"
    header = (f'Glyph benchmark: source {os.path.relpath(source, ROOT)}, {kimg:g} kimg per run, protocol {protocol}'
              f'{f", batch {BATCH}" if protocol == "ours" else ""}, '
              f'regularisation {reg}; {num} samples per run (psi 1) against {num_test} images of the {split} split; '
              f'mean ± std over seeds {",".join(map(str, seeds))}.')
    write_report(outdir, rows, header)
    return rows
