"""Ship a pretrained glyph snapshot as data/glyphs/source_glyph32.pkl with its options and glyph report.

ship_glyph_source writes (atomically) source_glyph32.pkl (the snapshot's G_ema and D; G is left out, since
adaptation starts from G_ema, which keeps the file a third smaller), source_glyph32.json (the run's
training_options.json, the snapshot's kimg and sha256, the glyph report of `num` samples against
source_test.zip, and the stages: when the run resumed from a snapshot of another run folder, that run's
options too, back to the run from scratch) and rewrites data/glyphs/MANIFEST.json.
"""
import os

from fsgan.benchmarks.glyphs import paths
from fsgan.tools.errors import ToolError


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
    in_repo = os.path.join(paths.ROOT, path)
    return in_repo if os.path.exists(in_repo) else os.path.abspath(path)


def training_stages(snapshot):
    """[{snapshot, kimg, training_options}] from the first run to the run of `snapshot`, following each run's
    `source` (the snapshot it resumed from) back through run folders with a training_options.json. A source
    given as a URL or short name, or a pickle outside a run folder, ends the chain; a recorded snapshot that
    no longer exists, or runs that resume from each other in a loop, raise ShipError (a ValueError)."""
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
            break
        from fsgan.options import read_training_options
        options = read_training_options(opts_path)  # the flat view, as the glyph preset reads it
        stages.insert(0, dict(snapshot=paths.recorded_path(path), kimg=snapshot_kimg(path), training_options=options))
        path = options.get('source')
    return stages


def ship_glyph_source(snapshot, num=1000):
    """Copy `snapshot` (G_ema and D) into data/glyphs with its record and glyph report; rewrite MANIFEST.json.

    Returns dict(path, sha256, report). Raises ShipError when the snapshot is not in a run folder or its
    training record is incomplete (checked before anything is written).
    """
    from dnnlib.fileio import atomic_write_json
    from fsgan.benchmarks.glyphs.eval import glyph_report
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    from fsgan.sampling import load_generator
    from fsgan.benchmarks.glyphs.classifier import write_manifest
    stages = training_stages(snapshot)
    if not stages:
        raise ShipError(f'{snapshot}: no training_options.json next to it; give a snapshot in a run folder')
    kimgs = [stage['kimg'] for stage in stages]
    net = load_network(snapshot)
    out = os.path.join(paths.DATA_DIR, paths.SOURCE_PICKLE_NAME)
    save_snapshot(out, None, net['D'], net['G_ema'], net.get('training_set_kwargs'))
    G, sha = load_generator(out)
    report = glyph_report(G, os.path.join(paths.DATA_DIR, paths.SOURCE_TEST_NAME), num=num)
    atomic_write_json(os.path.join(paths.DATA_DIR, paths.SOURCE_RECORD_NAME),
                      dict(sha256=sha, snapshot=stages[-1]['snapshot'], snapshot_sha256=net['sha256'],
                           kimg=None if None in kimgs else sum(kimgs),
                           training_options=stages[-1]['training_options'], stages=stages, glyph_report=report))
    write_manifest(paths.DATA_DIR)
    return dict(path=out, sha256=sha, report=report)
