"""Ship a pretrained glyph snapshot as data/glyphs/source_glyph32.pkl with its options and metrics.

  python scripts/ship_glyph_source.py --snapshot out/pretrain/00000-scratch-glyph32/network-snapshot-000028.pkl

Writes (atomically) data/glyphs/source_glyph32.pkl (the snapshot's G_ema and D; G is left out, since
adaptation starts from G_ema, which keeps the file a third smaller), source_glyph32.json (the run's
training_options.json, the snapshot's kimg and sha256, and the glyph report of --num samples against
data/glyphs/source_test.zip) and rewrites data/glyphs/MANIFEST.json.
"""
import json
import os
import re
import sys

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

GLYPHS = os.path.join(ROOT, 'data', 'glyphs')


@click.command()
@click.option('--snapshot', required=True, type=click.Path(exists=True, dir_okay=False),
              help='network-snapshot-*.pkl inside a scripts/train.py run folder.')
@click.option('--num', type=click.IntRange(min=2), default=1000, show_default=True, help='Samples for the report.')
def main(snapshot, num):
    """Copy the snapshot into data/glyphs and record its options and glyph report."""
    from dnnlib.fileio import atomic_write_json
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    from metrics.glyph_classifier import write_manifest
    from scripts.generate import load_generator
    from scripts.glyph_eval import glyph_report
    opts_path = os.path.join(os.path.dirname(snapshot), 'training_options.json')
    if not os.path.isfile(opts_path):
        raise click.ClickException(f'{snapshot}: no training_options.json next to it; give a snapshot in a run folder')
    with open(opts_path) as f:
        options = json.load(f)
    match = re.search(r'network-snapshot-(\d+)\.pkl$', snapshot)
    net = load_network(snapshot)
    out = os.path.join(GLYPHS, 'source_glyph32.pkl')
    save_snapshot(out, None, net['D'], net['G_ema'], net.get('training_set_kwargs'))
    G, sha = load_generator(out)
    report = glyph_report(G, os.path.join(GLYPHS, 'source_test.zip'), num=num)
    atomic_write_json(os.path.join(GLYPHS, 'source_glyph32.json'),
                      dict(sha256=sha, snapshot=os.path.relpath(snapshot, ROOT), snapshot_sha256=net['sha256'],
                           kimg=int(match.group(1)) if match else None, training_options=options,
                           glyph_report=report))
    write_manifest(GLYPHS)
    print(json.dumps(report, indent=2))
    print(f'Shipped {out} (sha256 {sha})')


if __name__ == '__main__':
    main()
