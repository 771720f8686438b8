#!/usr/bin/env python3
"""Train the emoji classifier (style = vendor, and category) on the CPU and score it on the shipped splits.

Training data: every image of the three vendors, read from the pinned npm tarballs (downloaded once into
the project's cache, or given with --google-tgz/--twitter-tgz/--openmoji-tgz), except the content
groups of noto_test, near_test and far_test (held out for the accuracy report) and of near_val (the
validation figures printed after each epoch). Writes --out (.pt state_dict) and the .json config beside
it atomically. Library: fsgan/benchmarks/emoji/classifier_train.py; see data/emoji/README.md.
"""
import os
import sys

import click

from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.classifier_train import train_emoji_classifier
from fsgan.benchmarks.emoji.npm import EmojiDataError
from fsgan.benchmarks.emoji.cli import check_weights_out, given_tarballs, tarball_options
from fsgan.tools.cli import command, overwrite_option

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@command()
@click.option('--data-dir', type=click.Path(exists=True, file_okay=False), default=os.path.join(ROOT, paths.DATA_DIR),
              show_default=True, help='Folder with the shipped emoji zips (held-out groups and scored splits).')
@click.option('--out', type=click.Path(dir_okay=False), show_default=True,
              default=os.path.join(ROOT, paths.DATA_DIR, 'emoji_classifier.pt'),
              help='Weights path (.pt); the config goes to the same name with .json.')
@overwrite_option('an existing --out')
@click.option('--epochs', type=click.IntRange(min=1), default=30, show_default=True)
@click.option('--batch-size', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True,
              help='Peak AdamW learning rate (one-cycle schedule).')
@click.option('--seed', type=int, default=0, show_default=True)
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True,
              help='torch CPU threads (the result depends on it; 1 is fastest on a busy 2-core machine).')
@tarball_options
def main(data_dir, out, overwrite, epochs, batch_size, lr, seed, threads, google_tgz, twitter_tgz, openmoji_tgz):
    """Train the emoji classifier and print its accuracy on the held-out splits."""
    import torch

    check_weights_out(out, overwrite)
    tarballs = given_tarballs(google_tgz, twitter_tgz, openmoji_tgz)
    torch.set_num_threads(threads)
    try:
        config = train_emoji_classifier(out, data_dir=data_dir, tarballs=tarballs, epochs=epochs,
                                        batch_size=batch_size, lr=lr, seed=seed, log=click.echo,
                                        command=' '.join(['scripts/train_emoji_classifier.py'] + sys.argv[1:]))
    except (EmojiDataError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'saved {out} and {out[:-3]}.json ({config["train"]["seconds"]} s)')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
