"""Ship a pretrained glyph snapshot as data/glyphs/source_glyph32.pkl with its options and metrics.

  python scripts/ship_glyph_source.py --snapshot out/pretrain/00000-scratch-glyph32/network-snapshot-000028.000.pkl

Writes (atomically) data/glyphs/source_glyph32.pkl (the snapshot's G_ema and D; G is left out, since
adaptation starts from G_ema, which keeps the file a third smaller), source_glyph32.json (the run's
training_options.json, the snapshot's kimg and sha256, the glyph report of --num samples against
data/glyphs/source_test.zip, and the stages: when the run resumed from a snapshot of another run folder,
that run's options too, back to the run from scratch) and rewrites data/glyphs/MANIFEST.json.
"""
import json
import os

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from fsgan.options import read_training_options
from fsgan.tools.cli import command

GLYPHS = os.path.join(ROOT, 'data', 'glyphs')


def snapshot_kimg(snapshot):
    """The kimg a network-snapshot-*.pkl name gives (fsgan.export.artefact_kimg), or None."""
    from fsgan.export import artefact_kimg
    return artefact_kimg(snapshot) if os.path.basename(snapshot).startswith('network-snapshot-') else None


def recorded_path(path):
    """`path` relative to the repository when inside it, else absolute (for the shipped json)."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def training_stages(snapshot):
    """[{snapshot, kimg, training_options}] from the first run to the run of `snapshot`, following each run's
    `source` (the snapshot it resumed from) back through run folders with a training_options.json. A source
    given as a URL or short name, or a pickle outside a run folder, ends the chain; a recorded snapshot that
    no longer exists, or runs that resume from each other in a loop, raise ValueError."""
    stages, seen = [], set()
    path = os.path.abspath(snapshot)
    while path is not None:
        if '://' in path or not path.endswith('.pkl'):
            break
        if not os.path.isabs(path):  # runs record the path they were given, normally from the repository root
            path = os.path.join(ROOT, path) if os.path.exists(os.path.join(ROOT, path)) else os.path.abspath(path)
        if not os.path.isfile(path):
            raise ValueError(f'{path}: a run resumed from this snapshot, but it is gone; restore it to ship the '
                             'full training record')
        if os.path.realpath(path) in seen:
            raise ValueError(f'{path}: the runs resume from each other in a loop')
        seen.add(os.path.realpath(path))
        opts_path = os.path.join(os.path.dirname(path), 'training_options.json')
        if not os.path.isfile(opts_path):
            break
        options = read_training_options(opts_path)  # the flat view, as the glyph preset reads it
        stages.insert(0, dict(snapshot=recorded_path(path), kimg=snapshot_kimg(path), training_options=options))
        path = options.get('source')
    return stages


@command()
@click.option('--snapshot', required=True, type=click.Path(exists=True, dir_okay=False),
              help='network-snapshot-*.pkl inside a scripts/train.py run folder.')
@click.option('--num', type=click.IntRange(min=2), default=1000, show_default=True, help='Samples for the report.')
def main(snapshot, num):
    """Copy the snapshot into data/glyphs and record its options and glyph report."""
    from dnnlib.fileio import atomic_write_json
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    from metrics.glyph_classifier import write_manifest
    from fsgan.sampling import load_generator
    from scripts.glyph_eval import glyph_report
    try:
        stages = training_stages(snapshot)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if not stages:
        raise click.ClickException(f'{snapshot}: no training_options.json next to it; give a snapshot in a run folder')
    kimgs = [stage['kimg'] for stage in stages]
    net = load_network(snapshot)
    out = os.path.join(GLYPHS, 'source_glyph32.pkl')
    save_snapshot(out, None, net['D'], net['G_ema'], net.get('training_set_kwargs'))
    G, sha = load_generator(out)
    report = glyph_report(G, os.path.join(GLYPHS, 'source_test.zip'), num=num)
    atomic_write_json(os.path.join(GLYPHS, 'source_glyph32.json'),
                      dict(sha256=sha, snapshot=stages[-1]['snapshot'], snapshot_sha256=net['sha256'],
                           kimg=None if None in kimgs else sum(kimgs),
                           training_options=stages[-1]['training_options'], stages=stages, glyph_report=report))
    write_manifest(GLYPHS)
    print(json.dumps(report, indent=2))
    print(f'Shipped {out} (sha256 {sha})')


if __name__ == '__main__':
    main()
