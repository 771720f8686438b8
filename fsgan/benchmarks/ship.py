"""Shipping a pretrained source with a benchmark: the training record of a snapshot, back through resumed runs."""
import os

from fsgan.benchmarks import ROOT
from fsgan.tools.errors import ToolError


def recorded_path(path):
    """`path` relative to the repository when inside it, else absolute (for the records written next to data)."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


class ShipError(ToolError, ValueError):
    """The snapshot's training record is incomplete (no run folder, a resumed-from snapshot gone, a loop)."""


def snapshot_kimg(snapshot):
    """The kimg a network-snapshot-*.pkl name gives (fsgan.export.artefact_kimg), or None."""
    from fsgan.export import artefact_kimg
    return artefact_kimg(snapshot) if os.path.basename(snapshot).startswith('network-snapshot-') else None


def _resolve(path):
    """A recorded source path: runs record the path they were given, normally from the repository root."""
    if os.path.isabs(path):
        return path
    in_repo = os.path.join(ROOT, path)
    return in_repo if os.path.exists(in_repo) else os.path.abspath(path)


def shipped_stages(pickle_path):
    """The `stages` a ship script recorded in the .json beside a shipped pickle; [] when there is none."""
    import json
    record = os.path.splitext(pickle_path)[0] + '.json'
    if not os.path.isfile(record):
        return []
    try:
        with open(record) as f:
            stages = json.load(f).get('stages', [])
    except (OSError, ValueError, AttributeError) as e:
        raise ShipError(f'{record}: not a ship record ({e}); restore it or remove it') from None
    return list(stages)


def training_stages(snapshot):
    """[{snapshot, kimg, training_options}] from the first run to the run of `snapshot`, following each run's
    `source` (the snapshot it resumed from) back through run folders with a training_options.json. A source
    given as a URL or short name, or a pickle outside a run folder, ends the chain; so does a shipped pickle
    (a ship script's copy, e.g. a pretraining stage kept in the repository) whose record, the .json beside it,
    lists its `stages`: they come first. A recorded snapshot that no longer exists, or runs that resume from
    each other in a loop, raise ShipError (a ValueError)."""
    stages, seen = [], set()
    path = os.path.abspath(snapshot)
    while path is not None:
        if '://' in path or not path.endswith('.pkl'):
            break
        path = _resolve(path)
        if not os.path.isfile(path):
            raise ShipError(f'{path}: a run resumed from this snapshot, but it is gone; restore it to ship the '
                            'full training record')
        if os.path.realpath(path) in seen:
            raise ShipError(f'{path}: the runs resume from each other in a loop')
        seen.add(os.path.realpath(path))
        opts_path = os.path.join(os.path.dirname(path), 'training_options.json')
        if not os.path.isfile(opts_path):
            stages[:0] = shipped_stages(path)
            break
        from fsgan.options import read_training_options
        options = read_training_options(opts_path)  # the flat view, as the glyph preset reads it
        stages.insert(0, dict(snapshot=recorded_path(path), kimg=snapshot_kimg(path), training_options=options))
        path = options.get('source')
    return stages


def total_kimg(stages):
    """Training length over all `stages` (training_stages' list) in kimg, rounded to the image (3 decimals);
    None when a stage's length is unknown."""
    kimgs = [stage['kimg'] for stage in stages]
    return None if None in kimgs else round(sum(kimgs), 3)
