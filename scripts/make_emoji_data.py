#!/usr/bin/env python3
"""Build the emoji benchmark (Noto source, Twemoji near target, OpenMoji far target) as dataset zips.

Downloads the three pinned npm tarballs through the project's download cache (or takes local copies),
checks their npm integrity, and writes data/emoji/ (shipped: target shots/val/test, noto_test.zip,
previews, MANIFEST.json) and data/emoji/cache/noto_train.zip (the source pretraining set).
See fsgan/benchmarks/emoji/ and data/emoji/README.md.
"""
import os

import click

from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.cli import given_tarballs, tarball_options
from fsgan.benchmarks.emoji.data import make_emoji_data
from fsgan.benchmarks.emoji.npm import EmojiDataError
from fsgan.tools.cli import command, overwrite_option

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse_shots(ctx, param, value):
    try:
        out = tuple(sorted({int(v) for v in value.split(',') if v.strip()}))
    except ValueError:
        raise click.BadParameter(f'expected comma-separated integers, got {value!r}') from None
    if not out or out[0] < 1:
        raise click.BadParameter('shot counts must be positive integers')
    return out


@command()
@click.option('--data-dir', type=click.Path(file_okay=False), default=os.path.join(ROOT, paths.DATA_DIR),
              show_default=True, help='Folder for the shipped zips, previews/ and MANIFEST.json.')
@click.option('--cache-dir', type=click.Path(file_okay=False), default=os.path.join(ROOT, paths.CACHE_DIR),
              show_default=True, help='Folder for noto_train.zip (re-made, not shipped).')
@click.option('--seed', type=int, default=paths.SEED, show_default=True,
              help='Master seed; each split has its own stream.')
@click.option('--shots', default=','.join(map(str, paths.SHOTS)), show_default=True, callback=_parse_shots,
              help='Nested shot counts per target.')
@click.option('--val-images', type=click.IntRange(min=1), default=paths.VAL_IMAGES, show_default=True,
              help='Whole groups are added to <target>_val.zip until it holds at least this many images.')
@click.option('--test-images', type=click.IntRange(min=1), default=paths.TEST_IMAGES, show_default=True,
              help='Whole groups are added to <target>_test.zip until it holds at least this many images.')
@click.option('--noto-test-fraction', type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=paths.NOTO_TEST_FRACTION, show_default=True,
              help='Share of Noto content groups in noto_test.zip.')
@tarball_options
@overwrite_option('existing files that would change (identical ones are left as they are)')
@click.option('--dry-run', is_flag=True, help='Print the packages and planned outputs; fetch and write nothing.')
def main(dry_run, google_tgz, twitter_tgz, openmoji_tgz, **opts):
    """Build the emoji benchmark data sets."""
    tarballs = given_tarballs(google_tgz, twitter_tgz, openmoji_tgz)
    for vendor, package in paths.PACKAGES.items():
        click.echo(f'{vendor}: {package.name}@{package.version} from {tarballs.get(vendor, package.url)}')
    splits = paths.target_split_names(opts['shots'])
    names = [paths.NOTO_TEST] + [f'{d}_{s}.zip' for d in ('near', 'far') for s in splits]
    click.echo(f'source set: {os.path.join(opts["cache_dir"], paths.NOTO_TRAIN)}')
    click.echo(f'shipped into {opts["data_dir"]}: ' + ', '.join(names) + f', {paths.MANIFEST}, {paths.PREVIEW_DIR}/')
    if dry_run:
        return
    try:
        manifest = make_emoji_data(tarballs=tarballs, log=click.echo, **opts)
    except EmojiDataError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f'split images: {manifest["split_images"]}')
    click.echo(f'{len(manifest["files"])} shipped files and {paths.MANIFEST} in {opts["data_dir"]} (files already '
               f'there with the same bytes left as they were); source set '
               f'{os.path.join(opts["cache_dir"], paths.NOTO_TRAIN)}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
