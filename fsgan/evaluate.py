"""The one evaluation path: a network's samples in a folder, a MetricContext, the registered metrics, records.

scripts/calc_metrics.py is a thin wrapper around calc_metrics(); the comparison engine (fsgan.compare) and the
glyph demo measure through run_metrics() and build their tables from the metrics' Columns (table_columns()).
Samples follow the one seed convention of fsgan.sampling: seed s -> numpy RandomState(s).randn(1, z_dim),
class s % c_dim for a conditional network.

A record (one per metric, as calc_metrics.py writes them as JSON lines): metric, value, values, options,
network_sha256, time (UTC, ISO 8601), seconds, and note when the metric added one (e.g. not applicable).
"""
import datetime
import json
import math
import os
import tempfile
import time

from dnnlib.fileio import atomic_write_bytes
from training.dataset import DataError

ALIASES = {'fid50k_full': 'fid', 'kid50k_full': 'kid'}  # stylegan2-ada-pytorch's names: 50k samples, all of --data
ALIAS_NUM = 50000
DEFAULT_NUM = 5000
NEED_FLAGS = {'data': '--data', 'shots': '--shots-dir', 'lpips_weights': '--lpips-weights', 'source_gen': '--source'}


class EvaluateError(Exception):
    """An evaluation that cannot start; the message says what to do. option: the option it concerns, or None
    (then the message names it, as for a metric's missing input)."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


class MetricFailed(EvaluateError):
    """A metric raised ('<metric>: <error>'); result: calc_metrics' result of the metrics computed before."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def metric_registry():
    """metrics.registry's REGISTRY with the built-in metrics and every benchmark's metrics (fsgan.benchmarks)."""
    from fsgan.benchmarks import register_metrics
    from metrics.registry import get_registry
    registry = get_registry()
    register_metrics()
    return registry


def columns(names, tables=False):
    """The Columns (metrics.registry.Column) of registered metrics `names`, in order, each key once."""
    from metrics.registry import metric_columns
    return metric_columns(names, metric_registry(), tables=tables)


def table_columns(names):
    """The Columns tables show for metrics `names` (a spread appears beside its mean, see Column.std)."""
    return columns(names, tables=True)


def mean_std(column, mean, std=None):
    """'mean ± std' in the format of `column` ('mean' without std; '' when mean is None)."""
    text = column.format(mean)
    return f'{text} ± {column.format(std)}' if text and std is not None else text


def cell(column, row):
    """A table cell of `row` (dict keyed by column keys): the formatted value, 'mean ± std' for a column with a
    spread (Column.std); '' when the value is None."""
    return mean_std(column, row.get(column.key), row.get(column.std) if column.std else None)


def legend(columns_shown):
    """The notes of the columns shown, as one paragraph ('' when none has a note)."""
    return ' '.join(c.legend() for c in columns_shown if c.legend())


def markdown_table(header, body):
    """Lines of a markdown table: first column left-aligned, the others right-aligned."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|']
    return lines + ['| ' + ' | '.join(cells) + ' |' for cells in body]


def resolve_aliases(names, num):
    """(metric names, num or None) -> (registered names, number of samples): an alias (ALIASES) stands for its
    metric on ALIAS_NUM samples when num is None; otherwise num defaults to DEFAULT_NUM."""
    if num is None:
        num = ALIAS_NUM if any(n in ALIASES for n in names) else DEFAULT_NUM
    return list(dict.fromkeys(ALIASES.get(n, n) for n in names)), num


def check_metric_names(names):
    """Names as given (order kept, each once); 'none' alone -> []. Raises EvaluateError for unknown ones."""
    if names == ['none']:
        return []
    registry = metric_registry()
    unknown = [n for n in names if n not in registry and n not in ALIASES]
    if not names or unknown:
        raise EvaluateError(f'unknown metric(s) {", ".join(unknown) or "(none given)"}; registered: '
                            f'{", ".join(registry)}; aliases: {", ".join(ALIASES)}; or none alone', '--metrics')
    return list(dict.fromkeys(names))


def parse_metric_options(pairs):
    """['expect=kannada', ...] -> {'expect': 'kannada'}; raises EvaluateError naming --metric-opt."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise EvaluateError(f'{pair!r}: expected KEY=VALUE', '--metric-opt')
        out[key.strip()] = value
    return out


def write_samples(G, out_dir, seeds, trunc=1.0, device='cpu', batch=16, progress=False):
    """Save one image per seed as out_dir/000000.png, 000001.png, ... (image i is seeds[i]); returns out_dir.

    G (eval mode, on `device`) renders groups of `batch` seeds through fsgan.sampling.iter_images (noise
    'const'), so these are the images scripts/generate.py shows for those seeds up to the float rounding of
    batched evaluation, and fewer seeds give a prefix of the same images. uint8 quantisation as stylegan2-ada
    (torch_utils.image_grid.to_uint8); 1-channel images are saved grey. progress: a progress bar.
    """
    from fsgan.sampling import iter_images
    from torch_utils.image_grid import save_png
    seeds = list(seeds)
    os.makedirs(out_dir, exist_ok=True)
    groups = iter_images(G, seeds, trunc=trunc, noise_mode='const', device=device, batch=batch)
    if progress:
        from tqdm import tqdm
        groups = tqdm(groups, total=math.ceil(len(seeds) / batch), desc=f'Generating {len(seeds)} images',
                      unit='batch')
    index = 0
    for _group, images in groups:
        for image in images:
            save_png(image, os.path.join(out_dir, f'{index:06d}.png'))
            index += 1
    return out_dir


def load_generator(network, device='cpu'):
    """(G_ema, else G, in eval mode on `device`; sha256 of the pickle); EvaluateError naming --network."""
    from fsgan.loading import NetworkLoadError, load_network
    try:
        net = load_network(network)
    except (OSError, ValueError, KeyError, NetworkLoadError) as e:
        raise EvaluateError(f'cannot load {network!r}: {str(e).splitlines()[0]}', '--network') from None
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    if G is None:
        raise EvaluateError(f'{network} holds no generator', '--network')
    return G.eval().requires_grad_(False).to(device), net.get('sha256')


def open_images(path, option, limit=None):
    """metrics.images.ImageSet of `path` (None for None); EvaluateError naming `option` when it holds no image."""
    from metrics.images import ImageSet
    if path is None:
        return None
    try:
        return ImageSet(path, limit=limit)
    except ValueError as e:
        raise EvaluateError(str(e), option) from None


def check_needs(ctx, names, coming=()):
    """Raise EvaluateError when MetricContext `ctx` lacks an input a metric of `names` needs (naming its option);
    coming: inputs not in ctx yet that will be made before the metrics run (e.g. 'source_gen')."""
    registry = metric_registry()
    for name in names:
        missing = [n for n in ctx.missing(registry[name]) if not set(n.split('|')) & set(coming)]
        if missing:
            flags = ' or '.join(NEED_FLAGS.get(m, f'--metric-opt {m[len("option:"):]}=...')
                                for n in missing for m in n.split('|'))
            raise EvaluateError(f'metric {name!r} needs {flags}')


def run_metrics(ctx, names, common=None, network_sha256=None):
    """Run the registered metrics `names` on MetricContext `ctx` -> records (JSON-safe dicts, see the module
    docstring); options: dict(common, **the metric's own options). A metric's note is printed once per message
    (the messages printed are kept in ctx.memo['shared/notes']). Raises MetricFailed on a metric's ValueError or
    OSError (files, downloads) or DataError (an image that cannot be read), with the records made before it."""
    registry = metric_registry()
    notes = ctx.memo.setdefault('shared/notes', set())
    records = []
    for name in names:
        start = time.time()
        try:
            result = registry[name].fn(ctx)
        except (ValueError, OSError, DataError) as e:  # OSError: files, downloads (dnnlib.util.DownloadError);
            raise MetricFailed(f'{name}: {e}', dict(records=records)) from e  # DataError: an unreadable image
        record = dict(metric=name, value=result['value'], values=result['values'],
                      options=dict(common or {}, **result.get('options', {})), network_sha256=network_sha256,
                      time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                      seconds=round(time.time() - start, 3))
        if result.get('note'):
            record['note'] = result['note']
            if result['note'] not in notes:
                notes.add(result['note'])
                print(f'note: {result["note"]}')
        records.append(json_safe(record))
    return records


def row_of(records):
    """{column key: number} of records of run_metrics: each metric's Columns; the first non-None value of a key
    two metrics report wins."""
    registry = metric_registry()
    row = {}
    for r in records:
        for key, value in registry[r['metric']].row(r).items():
            if row.get(key) is None:
                row[key] = value
    return row


def json_safe(v):
    """v with non-finite floats as None and numpy scalars as Python numbers (dicts and lists recursively)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if hasattr(v, 'item'):  # numpy scalars
        return json_safe(v.item())
    return v


def is_jsonl(path):
    """True when every non-empty line of the file at `path` is a JSON object with a 'metric' (a record of ours)."""
    try:
        with open(path, encoding='utf-8') as f:
            return all(isinstance(r, dict) and 'metric' in r for r in (json.loads(line) for line in f if line.strip()))
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def write_jsonl(path, records, replace=False):
    """Append records (one JSON object a line) to the file at `path`, or replace it; atomically."""
    old = b''
    if os.path.isfile(path) and not replace:
        with open(path, 'rb') as f:
            old = f.read()
        if old and not old.endswith(b'\n'):
            old += b'\n'
    new = b''.join((json.dumps(r, sort_keys=False) + '\n').encode('utf-8') for r in records)
    atomic_write_bytes(path, old + new)


def format_table(records):
    """Records -> text table: metric, value, and the other numbers of `values` (lists and dicts left out)."""
    def fmt(v):
        return f'{v:.6g}' if isinstance(v, float) else str(v)
    rows = [(r['metric'], fmt(r['value']),
             ', '.join(f'{k}={fmt(v)}' for k, v in r['values'].items() if not isinstance(v, (list, dict))))
            for r in records]
    width = [max(len(row[i]) for row in rows + [('metric', 'value', '')]) for i in range(2)]
    lines = [f'{"metric":{width[0]}}  {"value":>{width[1]}}  details']
    lines += [f'{name:{width[0]}}  {value:>{width[1]}}  {details}' for name, value, details in rows]
    return '\n'.join(lines)


def calc_metrics(names, network=None, gen_dir=None, data=None, shots_dir=None, num=DEFAULT_NUM, trunc=1.0, seed=0,
                 device='cpu', batch=16, out=None, replace=False, gen_out=None, metric_options=None, progress=True,
                 source=None, **context):
    """Measure registered metrics `names` on the samples of `network` (seeds seed .. seed + num - 1, psi `trunc`,
    written to gen_out, else a temporary folder) or on the first `num` images of `gen_dir`, against the test
    images `data` and the training shots `shots_dir` (folders or zips, or None). source: the network `network` was
    adapted from; its images for the same seeds and psi become MetricContext.source_gen (emoji_content).

    context: further MetricContext fields (detector_source, cache_dir, fig_dir, lpips_weights, faceqnet,
    kid_subsets, kid_subset_size); metric_options: MetricContext.options. The records are appended to the
    JSON-lines file `out` (replaced when `replace`). Returns dict(records, out: the file written or None,
    appended). Raises EvaluateError for a missing input or unreadable image set or network, MetricFailed (with
    the result of the metrics before it, already written) when a metric fails.
    """
    from metrics.registry import MetricContext
    context = {k: v for k, v in context.items() if v is not None}
    ctx = MetricContext(gen=None, data=open_images(data, '--data'), shots=open_images(shots_dir, '--shots-dir'),
                        device=device, batch_size=batch, seed=seed, options=dict(metric_options or {}),
                        progress=progress, **context)
    if source is not None and network is None:
        raise EvaluateError('--source needs --network (the same latents are drawn from both)', '--source')
    check_needs(ctx, names, coming=('source_gen',) if source is not None else ())
    with tempfile.TemporaryDirectory(prefix='fsgan-gen-') as tmp:
        network_sha256 = _sample_set(ctx, network, gen_dir, num, trunc, gen_out or os.path.join(tmp, 'gen'))
        if source is not None:
            _source_set(ctx, source, num, trunc, os.path.join(tmp, 'source'))
        common = dict(network=network, gen_dir=gen_dir, data=data, shots_dir=shots_dir, num=num,
                      num_gen=len(ctx.gen), trunc=trunc if network else None, seed=seed, device=device)
        try:
            records = run_metrics(ctx, names, common, network_sha256)
        except MetricFailed as e:
            e.result = _save(e.result['records'], out, replace)  # keep what was computed before the failure
            raise
    return _save(records, out, replace)


def _sample_set(ctx, network, gen_dir, num, trunc, folder):
    """Set ctx.gen (and ctx.tag, which names figures): the network's samples written to `folder`, or gen_dir's
    first `num` images. Returns the network's sha256 (None for gen_dir)."""
    if network is None:
        ctx.gen = open_images(gen_dir, '--gen-dir', limit=num)
        ctx.tag = 'gen-' + ctx.gen.content_hash()[:12]
        return None
    G, network_sha256 = load_generator(network, ctx.device)
    write_samples(G, folder, range(ctx.seed, ctx.seed + num), trunc=trunc, device=ctx.device, batch=ctx.batch_size,
                  progress=ctx.progress)
    ctx.gen = open_images(folder, '--network', limit=num)
    ctx.tag = f'{(network_sha256 or "net")[:12]}-s{ctx.seed}-t{trunc:g}'
    return network_sha256


def _source_set(ctx, source, num, trunc, folder):
    """Set ctx.source_gen: the source network's images for the seeds and psi of ctx.gen, written to `folder`."""
    G, sha256 = load_generator(source, ctx.device)
    write_samples(G, folder, range(ctx.seed, ctx.seed + num), trunc=trunc, device=ctx.device, batch=ctx.batch_size,
                  progress=ctx.progress)
    ctx.source_gen = open_images(folder, '--source', limit=num)
    ctx.memo['source/info'] = dict(source=source, source_sha256=sha256)


def _save(records, out, replace):
    """Write records to `out` (see calc_metrics) -> dict(records, out, appended, replaced)."""
    existed = bool(out) and os.path.isfile(out) and os.path.getsize(out) > 0
    if out and records:
        try:
            write_jsonl(out, records, replace)
        except OSError as e:  # the records are still shown (MetricFailed.result)
            raise MetricFailed(f'--out {out}: cannot write it ({e.strerror or e}); the table above holds the '
                               f'results', dict(records=records, out=None, appended=False)) from None
    return dict(records=records, out=out if records else None, appended=existed and not replace,
                replaced=existed and replace and bool(records))
