"""Ship a pretrained glyph snapshot as data/glyphs/source_glyph32.pkl with its options and glyph report.

ship_glyph_source writes (atomically) source_glyph32.pkl (the snapshot's G_ema and D; G is left out, since
adaptation starts from G_ema, which keeps the file a third smaller), source_glyph32.json (the run's
training_options.json, the snapshot's kimg and sha256, the glyph report of `num` samples against
source_test.zip, and the stages: when the run resumed from a snapshot of another run folder, that run's
options too, back to the run from scratch) and rewrites data/glyphs/MANIFEST.json.
"""
import os

from fsgan.benchmarks.glyphs import paths
from fsgan.benchmarks.ship import ShipError, total_kimg, training_stages


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
    net = load_network(snapshot)
    out = os.path.join(paths.DATA_DIR, paths.SOURCE_PICKLE_NAME)
    save_snapshot(out, None, net['D'], net['G_ema'], net.get('training_set_kwargs'))
    G, sha = load_generator(out)
    report = glyph_report(G, os.path.join(paths.DATA_DIR, paths.SOURCE_TEST_NAME), num=num)
    atomic_write_json(os.path.join(paths.DATA_DIR, paths.SOURCE_RECORD_NAME),
                      dict(sha256=sha, snapshot=stages[-1]['snapshot'], snapshot_sha256=net['sha256'],
                           kimg=total_kimg(stages),
                           training_options=stages[-1]['training_options'], stages=stages, glyph_report=report))
    write_manifest(paths.DATA_DIR)
    return dict(path=out, sha256=sha, report=report)
