#!/usr/bin/env python3
"""Train the glyph classifier (script + character, plus an auxiliary font-family head) on the CPU.

Training data: ``source.zip`` and ``<target>_train.zip`` from ``--train-dir``
(the output folder of ``scripts/make_glyph_data.py``).  After training, every
``*_test.zip``, ``*_val.zip`` and ``*_shots*.zip`` in ``--eval-dir`` is
scored; the accuracies are printed and stored in the JSON config next to the
weights (``--out``: ``<name>.pt`` + ``<name>.json``, written atomically).
"""

import sys

import click

from fsgan.benchmarks.glyphs.classifier_training import train_glyph_classifier
from fsgan.tools.cli import command


@command()
@click.option('--train-dir', required=True, type=click.Path(exists=True, file_okay=False), help='Folder with source.zip and <target>_train.zip.')
@click.option('--eval-dir', default='data/glyphs', show_default=True, type=click.Path(exists=True, file_okay=False), help='Folder whose test/val/shots zips are scored.')
@click.option('--out', default='data/glyphs/glyph_classifier.pt', show_default=True, type=click.Path(dir_okay=False), help='Weights path (.pt); config goes to the same name with .json.')
@click.option('--epochs', type=click.IntRange(min=1), default=3, show_default=True)
@click.option('--batch-size', type=click.IntRange(min=1), default=128, show_default=True)
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True, help='Peak AdamW learning rate (one-cycle schedule).')
@click.option('--max-source', type=click.IntRange(min=1), default=16000, show_default=True, help='Use at most this many source.zip images.')
@click.option('--seed', type=int, default=0, show_default=True)
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True, help='torch CPU threads (1 is fastest on a busy 2-core machine).')
def main(train_dir, eval_dir, out, epochs, batch_size, lr, max_source, seed, threads):
    """Train the glyph CNN on rendered glyphs and score it on the held-out splits."""
    train_glyph_classifier(train_dir, eval_dir, out, epochs=epochs, batch_size=batch_size, lr=lr,
                           max_source=max_source, seed=seed, threads=threads,
                           command='scripts/train_glyph_classifier.py ' + ' '.join(sys.argv[1:]), log=click.echo)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
