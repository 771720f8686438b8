#!/usr/bin/env python3
"""Train the emoji category probe (an MLP on TF-Inception pool features) on the CPU and score it.

Training data: the emoji classifier's (scripts/train_emoji_classifier.py): every image of the three vendors
from the pinned npm tarballs except the content groups of noto_test, near_test, far_test and near_val.
Inception features are computed once and kept in the metrics' cache (--cache-dir). Writes --out (.pt
state_dict) and the .json record beside it atomically. Library: fsgan/benchmarks/emoji/category_probe.py;
see data/emoji/README.md.
"""
import os
import sys

import click

from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.category_probe import train_category_probe
from fsgan.benchmarks.emoji.npm import EmojiDataError
from fsgan.benchmarks.emoji.cli import check_weights_out, given_tarballs, tarball_options
from fsgan.tools.cli import command, overwrite_option

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@command()
@click.option('--data-dir', type=click.Path(exists=True, file_okay=False), default=os.path.join(ROOT, paths.DATA_DIR),
              show_default=True, help='Folder with the shipped emoji zips (held-out groups and scored splits).')
@click.option('--out', type=click.Path(dir_okay=False), show_default=True,
              default=os.path.join(ROOT, paths.DATA_DIR, 'emoji_category_probe.pt'),
              help='Weights path (.pt); the record goes to the same name with .json.')
@overwrite_option('an existing --out')
@click.option('--cache-dir', type=click.Path(file_okay=False), default=None,
              help='Inception feature cache [default: $FSGAN_CACHE_DIR, else ~/.cache/fsgan/metrics].')
@click.option('--hidden', type=click.IntRange(min=1), default=128, show_default=True, help='Hidden units.')
@click.option('--epochs', type=click.IntRange(min=1), default=30, show_default=True)
@click.option('--batch-size', type=click.IntRange(min=1), default=128, show_default=True)
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help='Peak AdamW learning rate (one-cycle schedule).')
@click.option('--weight-decay', type=click.FloatRange(min=0), default=3.0, show_default=True,
              help='AdamW (decoupled) weight decay.')
@click.option('--seed', type=int, default=0, show_default=True)
@click.option('--threads', type=click.IntRange(min=1), default=2, show_default=True,
              help='torch CPU threads (the result depends on it).')
@click.option('--progress/--no-progress', default=True, show_default=True,
              help='Progress bars while Inception features are computed.')
@tarball_options
def main(data_dir, out, overwrite, cache_dir, hidden, epochs, batch_size, lr, weight_decay, seed, threads, progress,
         google_tgz, twitter_tgz, openmoji_tgz):
    """Train the emoji category probe and print its accuracy on the held-out splits."""
    import torch

    check_weights_out(out, overwrite)
    tarballs = given_tarballs(google_tgz, twitter_tgz, openmoji_tgz)
    torch.set_num_threads(threads)
    try:
        config = train_category_probe(out, data_dir=data_dir, tarballs=tarballs, cache_dir=cache_dir, hidden=hidden,
                                      epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                      seed=seed, progress=progress, log=click.echo,
                                      command=' '.join(['scripts/train_emoji_category_probe.py'] + sys.argv[1:]))
    except (EmojiDataError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'saved {out} and {out[:-3]}.json ({config["train"]["seconds"]} s)')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
