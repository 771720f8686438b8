"""Ship a pretrained glyph snapshot as data/glyphs/source_glyph32.pkl with its options and metrics.

  python scripts/ship_glyph_source.py --snapshot out/pretrain/00000-scratch-glyph32/network-snapshot-000028.000.pkl

Writes (atomically) data/glyphs/source_glyph32.pkl (the snapshot's G_ema and D; G is left out, since
adaptation starts from G_ema, which keeps the file a third smaller), source_glyph32.json (the run's
training_options.json, the snapshot's kimg and sha256, the glyph report of --num samples against
data/glyphs/source_test.zip, and the stages: when the run resumed from a snapshot of another run folder,
that run's options too, back to the run from scratch) and rewrites data/glyphs/MANIFEST.json.
"""
import json

import click

from fsgan.benchmarks.glyphs.ship import ship_glyph_source
from fsgan.tools.cli import command


@command()
@click.option('--snapshot', required=True, type=click.Path(exists=True, dir_okay=False),
              help='network-snapshot-*.pkl inside a scripts/train.py run folder.')
@click.option('--num', type=click.IntRange(min=2), default=1000, show_default=True, help='Samples for the report.')
def main(snapshot, num):
    """Copy the snapshot into data/glyphs and record its options and glyph report."""
    shipped = ship_glyph_source(snapshot, num)
    print(json.dumps(shipped['report'], indent=2))
    print(f'Shipped {shipped["path"]} (sha256 {shipped["sha256"]})')


if __name__ == '__main__':
    main()
