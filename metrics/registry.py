"""Metric registry (name -> function) and the context that metric functions receive.

A metric function takes a MetricContext and returns a dict: `value` (the headline float), `values` (dict of
all numbers it reports) and optionally `options` (settings it used, for the record). Register one with

    @register('name', help='one line', needs=('shots',))
    def my_metric(ctx): ...

`needs` names inputs that must be present: 'data', 'shots', 'data|shots' (at least one), 'lpips_weights'.
"""

import dataclasses
import os
from typing import Callable, Optional

from metrics.images import ImageSet


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    help: str
    needs: tuple = ()


REGISTRY = {}


def register(name, help, needs=()):
    """Decorator adding a metric function to REGISTRY under `name`."""
    def decorator(fn):
        REGISTRY[name] = MetricSpec(name=name, fn=fn, help=help, needs=tuple(needs))
        return fn
    return decorator


def get_registry():
    """REGISTRY with this package's built-in metrics loaded."""
    import metrics.builtin  # noqa: F401  (registers on import)
    return REGISTRY


def default_cache_dir():
    """$FSGAN_CACHE_DIR, else ~/.cache/fsgan/metrics."""
    return os.environ.get('FSGAN_CACHE_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'fsgan', 'metrics')


@dataclasses.dataclass
class MetricContext:
    """Inputs and settings shared by the metrics of one run; expensive intermediates are memoised.

    gen / data / shots: ImageSets of generated images, the test set and the training shots.
    fig_dir: where figures go; tag: distinguishes this run's figure names.
    """
    gen: ImageSet
    data: Optional[ImageSet] = None
    shots: Optional[ImageSet] = None
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
    memo: dict = dataclasses.field(default_factory=dict)

    def missing(self, spec):
        """The needs of MetricSpec `spec` that this context lacks (list of need strings)."""
        have = dict(data=self.data is not None, shots=self.shots is not None,
                    lpips_weights=self.lpips_weights is not None)
        return [n for n in spec.needs if not any(have[alt] for alt in n.split('|'))]

    def _cached(self, key, make):
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def detector(self):
        """The InceptionDetector (loaded once)."""
        from metrics.inception import InceptionDetector
        return self._cached('detector', lambda: InceptionDetector(self.detector_source, device=self.device))

    def features(self, which):
        """Inception features [N, 2048] of 'gen', 'data' or 'shots'; data and shots go through the disk cache."""
        from metrics.inception import cached_features

        def make():
            image_set = getattr(self, which)
            desc = f'Inception features, {which} ({len(image_set)} images)' if self.progress else None
            if which == 'gen':
                return self.detector().features_of(image_set, self.batch_size, desc)
            return cached_features(self.detector(), image_set, self.cache_dir, self.batch_size, desc)[0]
        return self._cached('features/' + which, make)

    def detector_options(self):
        det = self.detector()
        return dict(detector=det.source, detector_sha256=det.sha256, detector_kind=det.kind)
