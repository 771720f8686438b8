"""Benchmark presets (`compare.py --preset NAME`): one shipped source adapted to each target x shots x seed x method.

A Benchmark names its source, its target zips and its metrics. Each (target, shots, seed) cell is an ordinary
comparison folder, outdir/<target>-<shots>shot-seed<seed>/ (resumable like any compare.py run); the preset then
writes outdir/benchmark.csv and benchmark.md with mean ± std over seeds per (target, shots, method), and
outdir/figure-<target>-<shots>shot.png, the comparison figure of the first seed (target shots, then a row per
method, the same seeds in each row). The report gives the command, the commit, and where each run trained (from
the runs' sessions.jsonl, fsgan.provenance). Measured on the test split, every cell also measures the target's
validation split as compare's reference row ('real': held-out real images as if they were samples), so each
metric's value for images that copy nothing stands beside the methods'.

parallel=N > 1 first trains every (cell, method) run in N worker processes (fsgan.parallel; one log each under
outdir/logs/), then measures the cells in N processes, then collects the (cached) tables here. Every stage keeps
its results on disk, so running the same command again continues where a killed preset stopped.
"""
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from dnnlib.fileio import atomic_write_bytes
from fsgan import evaluate
from fsgan.benchmarks.ship import recorded_path
from fsgan.options import flatten_options
from fsgan.protocol import paper_kimg

REGULARISATION_KEYS = ('gamma', 'pl_weight', 'style_mixing', 'mode_seeking', 'mode_seeking_hinge')


@dataclass(frozen=True)
class Benchmark:
    """A preset's fixed parts. Target files: data_dir/<prefix>_shots<K>.zip, <prefix>_val.zip, <prefix>_test.zip.

    metrics: the registered metrics each comparison measures (those that apply); table: the metrics whose Columns
    the report shows (mean ± std over seeds). kimg None: the protocol's length (20, 16 for <= 5 shots).
    batch: the batch under `protocol` (another protocol uses its own). methods: {shots: comma-separated methods}
    run by default at that shot count (others: compare's defaults). expect: {target: script} (glyph_script).
    """
    name: str
    title: str
    source: str
    data_dir: str
    targets: dict               # target name -> file prefix in data_dir
    metrics: tuple
    table: tuple
    shots: tuple = (5, 10, 25)
    seeds: tuple = (0, 1, 2)
    kimg: float = None
    protocol: str = 'paper'
    batch: int = None
    num: int = 500
    num_test: int = 1000
    inception: bool = True
    methods: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)

    @property
    def columns(self):
        """The Columns (metrics.registry) of the report's numbers, each reported as mean ± std over seeds."""
        return tuple(evaluate.table_columns(self.table))


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


def source_regularisation(source):
    """The regularisation the source was pretrained with, {key: value} for the REGULARISATION_KEYS its .json
    (beside the .pkl, as the benchmarks' ship scripts write it) records under training_options, or, for a
    snapshot in a scripts/train.py run folder, that run's training_options.json; {} (scripts/train.py's defaults)
    for a source with neither. Every adaptation run of a preset and the demos uses them (docs/benchmark-glyphs.md,
    "Choosing the settings", for why)."""
    meta = os.path.splitext(source)[0] + '.json'
    run_options = os.path.join(os.path.dirname(os.path.abspath(source)), 'training_options.json')
    try:
        if os.path.isfile(meta):
            with open(meta) as f:
                options = json.load(f).get('training_options', {})
        elif os.path.isfile(run_options):
            meta = run_options
            with open(meta) as f:
                options = json.load(f)
        else:
            return {}
        options = dict(options)
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise ValueError(f'{meta}: not a source description ({e}); remove it or re-ship the source') from None
    options = flatten_options(options)  # a grouped training_options.json as well as a flat one
    return {k: float(options[k]) for k in REGULARISATION_KEYS if k in options}


def cells(bench, targets=None, shots=None, seeds=None):
    """[(target, shots, seed)] in run order: seeds innermost, so every setting gets its first seed early."""
    targets = tuple(bench.targets) if targets is None else targets
    unknown = [t for t in targets if t not in bench.targets]
    if unknown:
        raise ValueError(f'--preset-targets: unknown {", ".join(unknown)}; choose from {", ".join(bench.targets)}')
    shots = shots or bench.shots
    for t in targets:
        shipped = shipped_shot_counts(bench, t)
        missing = [k for k in shots if k not in shipped]
        if shipped and missing:
            raise ValueError(f'--preset-shots: {bench.name} has no {t} split of {", ".join(map(str, missing))} shots; '
                             f'choose from {", ".join(map(str, shipped))}')
    return [(t, k, s) for t in targets for k in shots for s in (seeds or bench.seeds)]


def shipped_shot_counts(bench, target):
    """Sorted shot counts of the <prefix>_shots<K>.zip files of `target` in bench.data_dir."""
    prefix = f'{bench.targets[target]}_shots'
    names = os.listdir(bench.data_dir) if os.path.isdir(bench.data_dir) else []
    return sorted(int(n[len(prefix):-4]) for n in names
                  if n.startswith(prefix) and n.endswith('.zip') and n[len(prefix):-4].isdigit())


def cell_config(bench, outdir, target, shots, seed, methods=None, kimg=None, split='test', source=None, device=None,
                num=None, num_test=None, protocol=None, runs=(), bf16_conv=False, checkpoint_minutes=None):
    """compare.setup_compare(...) of one cell; split 'val' measures against the validation split (tuning).
    methods None: bench.methods[shots], else compare's defaults (with runs too). source: a network pickle instead
    of the benchmark's shipped source (its regularisation read from the .json beside it, as for the shipped one).
    runs: ['NAME=RUNDIR'] run folders of this cell trained elsewhere, measured as extra rows (compare's --runs).
    bf16_conv: train with bfloat16 convolutions (compare's --bf16-conv); checkpoint_minutes: compare's
    --checkpoint-minutes (None: its default). On the test split the target's validation split is compare's
    --reference (the 'real' row)."""
    from fsgan.compare import CHECKPOINT_MINUTES, DEFAULT_METHODS, CompareError, setup_compare
    prefix = bench.targets[target]
    if source is not None and not os.path.isfile(source):
        raise CompareError(f'{source}: no such file; give a network snapshot .pkl', '--source')
    source = source or bench.source
    protocol = protocol or bench.protocol
    shots_zip = os.path.join(bench.data_dir, f'{prefix}_shots{shots}.zip')
    eval_zip = os.path.join(bench.data_dir, f'{prefix}_{split}.zip')
    val_zip = os.path.join(bench.data_dir, f'{prefix}_val.zip')
    for path in (source, shots_zip, eval_zip):
        if not os.path.isfile(path):
            hint = ' (or give --source)' if path == bench.source else ''
            raise ValueError(f'{path}: missing; the {bench.name} preset needs the files shipped in '
                             f'{recorded_path(bench.data_dir)}{hint}')
    kimg = kimg or bench.kimg or paper_kimg(shots)
    return setup_compare(os.path.join(outdir, cell_name(target, shots, seed)), source=source, target_dir=shots_zip,
                         shots=shots, methods=methods or bench.methods.get(shots) or ','.join(DEFAULT_METHODS),
                         runs=runs, kimg=kimg,
                         batch=bench.batch if protocol == bench.protocol else None, protocol=protocol, seed=seed,
                         tick=kimg / 2, snap=1, test_dir=eval_zip, num=num or bench.num,
                         num_test=bench.num_test if num_test is None else num_test, device=device,
                         inception=bench.inception, expect=bench.expect.get(target),
                         train_options=source_regularisation(source), metrics=bench.metrics, bf16_conv=bf16_conv,
                         checkpoint_minutes=CHECKPOINT_MINUTES if checkpoint_minutes is None else checkpoint_minutes,
                         reference=val_zip if split == 'test' and os.path.isfile(val_zip) else None)


def aggregate(bench, results):
    """results {(target, shots, seed): rows of compare.run_compare} -> rows of mean/std per (target, shots, method).
    The reference row (compare.REFERENCE_ROW) measures the same images against the same shots in every seed: its
    std is None (no spread), not 0."""
    from fsgan.compare import REFERENCE_ROW
    groups = {}
    for (target, shots, seed), rows in results.items():
        for r in rows:
            groups.setdefault((target, shots, r['method']), []).append(r)
    out = []
    for (target, shots, method), rows in groups.items():
        row = dict(target=target, shots=shots, method=method, seeds=len(rows),
                   trainable_params=rows[0].get('trainable_params'))
        for c in bench.columns:
            values = [r[c.key] for r in rows if r.get(c.key) is not None]
            row[c.key + '_mean'] = float(np.mean(values)) if values else None
            # the sample standard deviation (ddof 1): none from a single value
            row[c.key + '_std'] = (float(np.std(values, ddof=1)) if len(values) > 1 and method != REFERENCE_ROW
                                   else None)
            row[c.key + '_n'] = len(values)  # seeds with a value (a metric may be missing for some)
        out.append(row)
    return out


def seed_cell(column, row):
    """'mean ± std' of an aggregate row's column, with '(n of seeds)' when some seeds have no value for it."""
    text = evaluate.mean_std(column, row[column.key + '_mean'], row[column.key + '_std'])
    n = row.get(column.key + '_n', row['seeds'])
    return f'{text} ({n} of {row["seeds"]})' if text and n < row['seeds'] else text


def method_label(row, seeds):
    """An aggregate row's name, with '(n seeds)' when it has fewer seeds than the table's heading says."""
    n = row['seeds']
    return row['method'] if n == seeds else f'{row["method"]} ({n} seed{"s" * (n != 1)})'


def write_report(bench, outdir, rows, header, places=()):
    """benchmark.csv (every number) and benchmark.md (the command and commit, a table per target and shots, the
    columns' legend, then where the runs trained: `places` of training_places), atomically."""
    from fsgan import provenance
    from fsgan.compare import REFERENCE_ROW, TRAINABLE_COLUMN, write_csv
    fields = ['target', 'shots', 'method', 'seeds', 'trainable_params']
    fields += [c.key + s for c in bench.columns for s in ('_mean', '_std', '_n')]
    write_csv(os.path.join(outdir, 'benchmark.csv'), rows, fields)
    lines = [header, '', f'Command: `{provenance.command_line()}`, at commit '
                         f'{provenance.commit_label(provenance.git_commit())}.', '']
    for target, shots in sorted({(r['target'], r['shots']) for r in rows}):
        block = [r for r in rows if r['target'] == target and r['shots'] == shots]
        seeds = max(r['seeds'] for r in block)
        body = [[method_label(r, seeds), TRAINABLE_COLUMN.format(r['trainable_params'])]
                + [seed_cell(c, r) for c in bench.columns] for r in block]
        lines += [f'### {target}, {shots} shots ({seeds} seed{"s" * (seeds != 1)})', '']
        lines += evaluate.markdown_table(['Method', 'Trainable'] + [c.title for c in bench.columns], body) + ['']
    if any(r['method'] == REFERENCE_ROW for r in rows):
        latent = '; content preservation needs a latent' if 'emoji_content' in bench.table else ''
        lines.append(f'{REFERENCE_ROW}: the target\'s validation split (held-out real images, none of them a shot) '
                     f'measured as if it were a method\'s samples: what each metric gives for target images that '
                     f'copy nothing; the same in every seed. Fréchet distances are left out when it holds fewer '
                     f'images than the samples (they depend on the set size){latent}.')
    lines.append(evaluate.legend(bench.columns))
    if places:
        lines += [''] + places_section(places)
    atomic_write_bytes(os.path.join(outdir, 'benchmark.md'), ('\n'.join(lines) + '\n').encode())


def log_path(outdir, *parts):
    """outdir/logs/<parts joined by '-'>.log, with characters other than letters, digits and ._@=+- as '_'."""
    return os.path.join(outdir, 'logs', re.sub(r'[^A-Za-z0-9._@=+-]', '_', '-'.join(map(str, parts))) + '.log')


PRESET_LOCK = 'preset.lock'


def run_in_parallel(configs, outdir, parallel, threads, progress=print, measure=True):
    """Train every (cell, method) run not yet done, then (measure) measure every cell, in `parallel` worker
    processes of `threads` CPU threads each (measuring fewer cells than `parallel`, each gets the idle threads).
    configs: {cell: compare config}. Raises fsgan.parallel.JobError naming failures."""
    from fsgan import compare
    from fsgan.parallel import Job, run_jobs
    states = {cell: compare.load_state(cfg) for cell, cfg in configs.items()}  # checks every cell before a start
    train = [Job(f'{cell_name(*cell)}/{name}', compare.train_method, (cfg, name), dict(progress=False),
                 log=log_path(outdir, cell_name(*cell), name))
             for cell, cfg in configs.items() for name, run_dir in cfg.entries
             if run_dir is None and not states[cell]['methods'].get(name, {}).get('done')]
    if train:
        progress(f'[preset] training {len(train)} runs in {parallel} processes (logs in {outdir}/logs)')
        run_jobs(train, parallel=parallel, threads=threads, progress=progress)
    if not measure:
        return
    cells_to_measure = [Job(cell_name(*cell), compare.run_compare, (cfg,), dict(progress=False),
                            log=log_path(outdir, cell_name(*cell), 'measure')) for cell, cfg in configs.items()]
    # fewer cells than processes: each takes the threads of the idle ones (one cell of 2 x 1 threads: 2 threads)
    measure_threads = max(threads, parallel * threads // max(len(cells_to_measure), 1))
    progress(f'[preset] measuring {len(cells_to_measure)} cells in {min(parallel, len(cells_to_measure))} '
             f'processes of {measure_threads} threads')
    run_jobs(cells_to_measure, parallel=parallel, threads=measure_threads, progress=progress)


def grid_configs(bench, outdir, targets=None, shots=None, seeds=None, runs=(), **options):
    """(cells in run order, {cell: cell_config(..., **options)}) of a grid. runs (--runs) name run folders of
    one cell: refused (ValueError) for a grid of several cells, and checked (compare.check_run_dir) up front."""
    from fsgan.compare import check_given_runs
    todo = cells(bench, targets, shots, seeds)
    if runs and len(todo) != 1:
        raise ValueError(f'--runs: a run folder belongs to one cell, but the grid has {len(todo)}; give one '
                         f'--preset-targets, --preset-shots and --preset-seeds each')
    configs = {c: cell_config(bench, outdir, *c, runs=runs, **options) for c in todo}
    for cfg in configs.values():
        check_given_runs(cfg)
    return todo, configs


def run_preset(bench, outdir, methods=None, targets=None, shots=None, seeds=None, kimg=None, split='test',
               device=None, progress=True, num=None, num_test=None, source=None, protocol=None, parallel=1,
               threads=1, runs=(), train_only=False, bf16_conv=False, checkpoint_minutes=None):
    """Run (or continue) every cell, then write the aggregate report. Returns its rows (train_only: train every
    run not yet done, measure nothing and return None; the same call without it measures).

    parallel: worker processes (1: every cell in this process, in order); threads: CPU threads per worker.
    runs: ['NAME=RUNDIR'] for a one-cell grid: runs of that cell trained elsewhere (e.g. on another device, to
    compare where a run trained), measured as extra rows."""
    from dnnlib.lock import creating_folder_lock
    if parallel < 1 or threads < 1:
        raise ValueError(f'--parallel and --threads must be >= 1, got {parallel} and {threads}')
    todo, configs = grid_configs(bench, outdir, targets, shots, seeds, runs, methods=methods, kimg=kimg, split=split,
                                 device=device, num=num, num_test=num_test, source=source, protocol=protocol,
                                 bf16_conv=bf16_conv, checkpoint_minutes=checkpoint_minutes)
    with creating_folder_lock(outdir, PRESET_LOCK):  # a second process on the same grid gets FolderLocked
        return _run_cells(bench, outdir, todo, configs, seeds or bench.seeds, split, progress, parallel, threads,
                          train_only)


def _run_cells(bench, outdir, todo, configs, seeds, split, progress, parallel, threads, train_only):
    """run_preset's work, with the grid's folder held."""
    from fsgan import compare
    if parallel > 1:
        run_in_parallel(configs, outdir, parallel, threads, measure=not train_only)
    if train_only:
        for i, cell in enumerate(todo):
            print(f'[preset {bench.name}] cell {i + 1}/{len(todo)}: {cell_name(*cell)} (training only)')
            compare.train_only(configs[cell], progress=progress)
        return None
    results = {}
    for i, cell in enumerate(todo):
        print(f'[preset {bench.name}] cell {i + 1}/{len(todo)}: {cell_name(*cell)}')
        result = compare.run_compare(configs[cell], progress=progress)
        results[cell] = result['rows']
        target, k, seed = cell
        if seed == seeds[0]:
            shutil.copyfile(result['figure'], os.path.join(outdir, f'figure-{target}-{k}shot.png'))
    rows = aggregate(bench, results)
    write_report(bench, outdir, rows, report_header(bench, configs, split, seeds), training_places(configs))
    return rows


def training_places(configs):
    """Where and from which commit each (cell, method) run trained, from its sessions.jsonl (fsgan.provenance):
    [dict(cell, method, where, commits, kimg)], where/commits the distinct labels in session order ('not recorded'
    for a run without records), kimg the kimg each session started at. A run not yet in the cell's state is
    looked up as compare.train_method stores it."""
    from fsgan import compare, provenance
    places = []
    for cell, cfg in configs.items():
        state = compare.load_state(cfg)
        for name, _ in cfg.entries:
            entry = state['methods'].get(name, {})
            run_dir = (compare.run_path(cfg, entry) if 'run_dir' in entry
                       else compare.checkpointed_run(os.path.join(cfg.outdir, 'runs', name)))
            sessions = [] if run_dir is None else provenance.read_sessions(run_dir)
            where = list(dict.fromkeys(provenance.where_label(r) for r in sessions)) or ['not recorded']
            commits = list(dict.fromkeys(provenance.commit_label(r.get('git')) for r in sessions)) or ['not recorded']
            places.append(dict(cell=cell_name(*cell), method=name, where=where, commits=commits,
                               kimg=[r.get('kimg') for r in sessions]))
    return places


def places_section(places):
    """Markdown lines: a summary of where the runs trained, then a row per run that trained in more than one
    place (a run continued on another machine), if any."""
    counts = Counter(' then '.join(p['where']) for p in places)
    lines = ['### Where the runs trained', '']
    lines += [f'- {where}: {n} run{"s" * (n != 1)}' for where, n in sorted(counts.items())]
    commits = sorted({c for p in places for c in p['commits']})
    lines.append(f'- code: commit{"s" * (len(commits) != 1)} {", ".join(commits)}')
    moved = [p for p in places if len(p['where']) > 1]
    if moved:
        body = [[p['cell'], p['method'], ' then '.join(p['where']),
                 ', '.join('?' if k is None else f'{k:g}' for k in p['kimg'])] for p in moved]
        lines += [''] + evaluate.markdown_table(['Cell', 'Method', 'Trained on', 'Sessions started at kimg'], body)
    return lines


def plan_preset(bench, outdir, methods=None, targets=None, shots=None, seeds=None, kimg=None, split='test',
                source=None, protocol=None, runs=(), bf16_conv=False):
    """compare.py --preset NAME --dry-run: the lines of what run_preset would train, per cell (compare.plan),
    then the totals. Writes nothing."""
    from fsgan.compare import kimg_left, plan, plan_lines
    _todo, configs = grid_configs(bench, outdir, targets, shots, seeds, runs, methods=methods, kimg=kimg,
                                  split=split, source=source, protocol=protocol, bf16_conv=bf16_conv)
    lines, every = [], []
    for cell, cfg in configs.items():
        rows = plan(cfg)
        lines += [f'{cell_name(*cell)} ({cfg.settings["kimg"]:g} kimg per run):'] + plan_lines(rows)[:-1]
        every += rows
    counts = Counter(r['status'] for r in every)
    left, count = kimg_left(every)[0], len(every)
    summary = ', '.join(f'{counts[k]} {k}' for k in ('given', 'done', 'partial', 'pending') if k in counts)
    header = (f'--dry-run: preset {bench.name} in {outdir}: {len(configs)} cells, {count} runs ({summary}); '
              f'{left:g} kimg left to train; nothing was written')
    return [header] + lines


def test_images(ms):
    """How many images of the evaluation split the metrics use (num_test caps it; 0 = all)."""
    from metrics.images import ImageSet
    return len(ImageSet(ms['test_dir'], limit=ms['num_test'] or None))


def report_header(bench, configs, split, seeds):
    """The report's first paragraph: source, length, protocol, regularisation, samples and seeds."""
    cfg = next(iter(configs.values()))
    s, ms = cfg.settings, cfg.metric_settings
    kimgs = sorted({c.settings['kimg'] for c in configs.values()})
    reg = ', '.join(f'{k} {v:g}' for k, v in s.get('train', {}).items()) or "scripts/train.py's defaults"
    source = recorded_path(s['source'])
    batch = '' if s['batch'] is None else f', batch {s["batch"]}'
    return (f'{bench.title}: source {source}, {" or ".join(f"{k:g}" for k in kimgs)} kimg per run, protocol '
            f'{s["protocol"]}{batch}, regularisation {reg}'
            f'{", bfloat16 convolutions (--bf16-conv)" if s.get("bf16_conv") else ""}; '
            f'{ms["num"]} samples per run (psi {ms["metrics_trunc"]:g}) against {test_images(ms)} images of '
            f'the {split} split; mean ± sample standard deviation over seeds {",".join(map(str, seeds))} ("(2 of 3)": '
            f'a metric with a value for only some seeds).')
