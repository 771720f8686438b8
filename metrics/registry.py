"""Metric registry (name -> function), the table columns each metric reports, and the context metric functions
receive.

A metric function takes a MetricContext and returns a dict: `value` (the headline float), `values` (dict of
all numbers it reports), optionally `options` (settings it used, for the record) and `note` (a sentence for the
user, e.g. why the metric does not apply; its numbers are then None). Register one with

    @register('name', help='one line', needs=('shots',),
              columns=(Column('my_mean', 'My metric', '.3f', 'up', value='mean'),))
    def my_metric(ctx): ...

`needs` names inputs that must be present: 'data', 'shots', 'data|shots' (at least one), 'lpips_weights', or
'option:KEY' (MetricContext.options must hold KEY). `columns` are the table columns of the numbers the metric
reports (tables and CSV files are built from them; `values` may hold more, e.g. image counts). `weights` are the
files of the networks its numbers come from (e.g. a benchmark's classifier), besides the Inception detector:
whoever caches the metric's numbers keys them by those files' contents (weights_digest), so a retrained
classifier is measured afresh instead of mixed with numbers of the old one.
"""

import dataclasses
import os
from typing import Callable, Optional

from metrics.images import ImageSet

ARROWS = {'up': ' ↑', 'down': ' ↓', None: ''}


@dataclasses.dataclass(frozen=True)
class Column:
    """One number of a metric as tables show it.

    key: the row / CSV column name (e.g. 'fid_test'); header: table header without arrow; fmt: format spec of
    one value (e.g. '.2f', '.1%'); better: 'up', 'down' or None (which direction is better; the title carries
    ↑ / ↓); value: the key of the number in the metric's `values` (default `key`); std: the key of another
    column of the same metric holding this number's spread (tables then show 'mean ± std' in this column);
    show: False for numbers that go to CSV / JSON files only; note: legend sentence for tables that show it.
    """
    key: str
    header: str
    fmt: str = '.2f'
    better: Optional[str] = None
    value: Optional[str] = None
    std: Optional[str] = None
    show: bool = True
    note: str = ''

    def __post_init__(self):
        if self.better not in ARROWS:
            raise ValueError(f'column {self.key}: better must be up, down or None, not {self.better!r}')

    @property
    def title(self):
        """The header with ↑ (higher is better) or ↓ (lower is better)."""
        return self.header + ARROWS[self.better]

    @property
    def source(self):
        """Key of this number in the metric's `values`."""
        return self.value or self.key

    def format(self, v):
        """v formatted with fmt; '' for None. A count column (fmt 'd') shows a fractional value, such as a mean
        over seeds, with one decimal."""
        if v is None:
            return ''
        if self.fmt.endswith('d') and not isinstance(v, int):
            v = float(v)
            return format(int(v), self.fmt) if v.is_integer() else format(v, '.1f')
        return format(v, self.fmt)

    def legend(self):
        """'Header: note' or '' without a note."""
        return f'{self.header}: {self.note}' if self.note else ''


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    help: str
    needs: tuple = ()
    columns: tuple = ()
    weights: tuple = ()     # paths of the network files the numbers depend on (see the module docstring)
    size_dependent: bool = False    # its numbers move with the number of generated images (see register)
    version: int = 1                # raised whenever its numbers change for the same inputs (see register)

    def row(self, result):
        """{column key: number} of a result of fn (None where `values` lacks it)."""
        return {c.key: result['values'].get(c.source) for c in self.columns}


REGISTRY = {}


def register(name, help, needs=(), columns=(), weights=(), size_dependent=False, version=1):
    """Decorator adding a metric function to REGISTRY under `name`; `columns`: its Column tuple (at least one);
    `weights`: paths of the network files its numbers depend on; `size_dependent`: its numbers move with the
    number of generated images beyond noise (Fréchet distances are biased upward for small sets), so only
    sets of the same size compare; `version`: raise it whenever the metric's numbers change for the same inputs
    (a new column, a fix): whoever caches its numbers keys them by it (cache_key), so they are measured afresh."""
    if not columns or not all(isinstance(c, Column) for c in columns):
        raise ValueError(f'metric {name}: declare the columns of its numbers (Column objects)')

    def decorator(fn):
        REGISTRY[name] = MetricSpec(name=name, fn=fn, help=help, needs=tuple(needs), columns=tuple(columns),
                                    weights=tuple(weights), size_dependent=bool(size_dependent),
                                    version=int(version))
        return fn
    return decorator


def weights_digest(names, registry=None):
    """{metric name: {weights file name: sha256, or None where the file is missing}} of the metrics `names` that
    declare weights: what a cache of their numbers must match."""
    from dnnlib.util import file_sha256
    registry = get_registry() if registry is None else registry
    return {name: {os.path.basename(path): file_sha256(path) if os.path.isfile(path) else None
                   for path in registry[name].weights}
            for name in names if registry[name].weights}


def cache_key(names, registry=None):
    """What cached numbers of the metrics `names` must match besides their inputs and settings: metric_weights
    (weights_digest) and, for metrics past their first version, metric_versions {name: version}. A metric at
    version 1 adds nothing, so numbers cached before versions existed stay valid while their metric is unchanged."""
    registry = get_registry() if registry is None else registry
    key = dict(metric_weights=weights_digest(names, registry))
    versions = {name: registry[name].version for name in names if registry[name].version != 1}
    if versions:
        key['metric_versions'] = versions
    return key


def get_registry():
    """REGISTRY with this package's built-in metrics loaded."""
    import metrics.builtin  # noqa: F401  (registers on import)
    return REGISTRY


def metric_columns(names, registry=None, tables=False):
    """The Columns of the metrics `names` in order; a key declared by two metrics counts once (the first).

    tables: only the columns tables show (not show=False, not the spread of another column).
    """
    registry = get_registry() if registry is None else registry
    columns = {}
    for name in names:
        for c in registry[name].columns:
            columns.setdefault(c.key, c)
    if tables:
        spreads = {c.std for c in columns.values() if c.std}
        return [c for c in columns.values() if c.show and c.key not in spreads]
    return list(columns.values())


def default_cache_dir():
    """$FSGAN_CACHE_DIR, else ~/.cache/fsgan/metrics."""
    return os.environ.get('FSGAN_CACHE_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'fsgan', 'metrics')


@dataclasses.dataclass
class MetricContext:
    """Inputs and settings shared by the metrics of one run; expensive intermediates are memoised.

    gen / data / shots: ImageSets of generated images, the test set and the training shots.
    fig_dir: where figures go; tag: distinguishes this run's figure names.
    options: settings of particular metrics, {key: value} (e.g. {'expect': 'kannada'}; see their `needs`).
    memo: intermediates (see cached); keys that begin 'shared/' depend on neither gen nor shots, so a context
    of the same data may start from them.
    """
    gen: ImageSet
    data: Optional[ImageSet] = None
    shots: Optional[ImageSet] = None
    source_gen: Optional[ImageSet] = None       # the source network's images for the same latents as gen
    device: str = 'cpu'
    batch_size: int = 16
    seed: int = 0
    detector_source: Optional[str] = None
    cache_dir: str = dataclasses.field(default_factory=default_cache_dir)
    fig_dir: str = '.'
    tag: str = 'run'
    lpips_weights: Optional[str] = None
    faceqnet: Optional[str] = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    progress: bool = False                      # progress bars while Inception features are computed
    options: dict = dataclasses.field(default_factory=dict)
    memo: dict = dataclasses.field(default_factory=dict)

    def missing(self, spec):
        """The needs of MetricSpec `spec` that this context lacks (list of need strings)."""
        have = dict(data=self.data is not None, shots=self.shots is not None,
                    lpips_weights=self.lpips_weights is not None, source_gen=self.source_gen is not None)
        have.update({'option:' + k: True for k in self.options})
        return [n for n in spec.needs if not any(have.get(alt, False) for alt in n.split('|'))]

    def cached(self, key, make):
        """memo[key], made by make() the first time."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def detector(self):
        """The InceptionDetector (loaded once)."""
        from metrics.inception import InceptionDetector
        return self.cached(f'shared/detector/{self.detector_source}/{self.device}',
                           lambda: InceptionDetector(self.detector_source, device=self.device))

    def features(self, which):
        """Inception features [N, 2048] of 'gen', 'source_gen', 'data' or 'shots'; data and shots go through the
        disk cache."""
        from metrics.inception import cached_features

        def make():
            image_set = getattr(self, which)
            desc = f'Inception features, {which} ({len(image_set)} images)' if self.progress else None
            if which in ('gen', 'source_gen'):
                return self.detector().features_of(image_set, self.batch_size, desc)
            return cached_features(self.detector(), image_set, self.cache_dir, self.batch_size, desc)[0]
        return self.cached('features/' + which, make)

    def detector_options(self):
        det = self.detector()
        return dict(detector=det.source, detector_sha256=det.sha256, detector_kind=det.kind)
