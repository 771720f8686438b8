#!/usr/bin/env python3
"""Render the glyph benchmark datasets (stylegan2-ada-pytorch zip format).

The formats, datasets and splits: fsgan/benchmarks/glyphs/data.py.
"""
import re

import click

from fsgan.benchmarks.glyphs.data import ALL_DATASETS, GlyphDataOptions, make_glyph_data
from fsgan.tools.cli import command


def _parse_int_list(ctx, param, value):
    try:
        out = sorted({int(v) for v in value.split(',') if v.strip()})
    except ValueError:
        raise click.BadParameter(f'expected comma-separated integers, got {value!r}')
    if not out or out[0] < 1:
        raise click.BadParameter('shot counts must be positive integers')
    return out


def _parse_datasets(ctx, param, value):
    out = [v.strip() for v in value.split(',') if v.strip()]
    bad = [v for v in out if v not in ALL_DATASETS]
    if bad or not out:
        raise click.BadParameter(f'unknown dataset(s) {bad}; choose from {",".join(ALL_DATASETS)}')
    return out


def _check_regex(ctx, param, value):
    try:
        re.compile(value)
    except re.error as e:
        raise click.BadParameter(f'invalid regex: {e}')
    return value


def _check_resolution(ctx, param, value):
    if value < 8 or value & (value - 1):
        raise click.BadParameter(f'resolution must be a power of two >= 8, got {value}')
    return value


@command()
@click.option('--outdir', required=True, type=click.Path(file_okay=False), help='Output folder for zips and previews.')
@click.option('--seed', type=int, default=0, show_default=True, help='Master seed; every split has its own stream.')
@click.option('--resolution', type=int, default=32, show_default=True, callback=_check_resolution, help='Image size in pixels.')
@click.option('--channels', type=click.Choice(['1', '3']), default='1', show_default=True, help='1 = grayscale L, 3 = RGB (gray replicated).')
@click.option('--fonts-root', type=click.Path(exists=True, file_okay=False), default='/usr/share/fonts', show_default=True, help='Folder scanned for .ttf/.otf fonts.')
@click.option('--datasets', default=','.join(ALL_DATASETS), show_default=True, callback=_parse_datasets, help='Comma-separated subset of datasets to write.')
@click.option('--heldout-regex', default='Z003|Chancery|Chorus', show_default=True, callback=_check_regex, help='Font family regex of the held-out near-target Latin family.')
@click.option('--source-size', type=click.IntRange(min=1), default=60000, show_default=True, help='Images in source.zip.')
@click.option('--source-test-size', type=click.IntRange(min=0), default=2000, show_default=True, help='Images in source_test.zip.')
@click.option('--shots', default='5,10,25,100', show_default=True, callback=_parse_int_list, help='Nested few-shot split sizes per target.')
@click.option('--val-size', type=click.IntRange(min=0), default=250, show_default=True, help='Images in <target>_val.zip.')
@click.option('--test-size', type=click.IntRange(min=0), default=1500, show_default=True, help='Images in <target>_test.zip.')
@click.option('--train-size', type=click.IntRange(min=0), default=8000, show_default=True, help='Images in <target>_train.zip (classifier training); 0 = none.')
@click.option('--size-jitter', type=click.FloatRange(0, 0.5), default=0.08, show_default=True, help='Relative font-size jitter (uniform +-).')
@click.option('--shift', type=click.FloatRange(0, 8), default=1.5, show_default=True, help='Max shift in output pixels (uniform +-).')
@click.option('--rotation', type=click.FloatRange(0, 45), default=5.0, show_default=True, help='Max rotation in degrees (uniform +-).')
@click.option('--max-chars', type=click.IntRange(min=1), default=None, help='Use only the first N classes of each script (tests).')
@click.option('--max-fonts', type=click.IntRange(min=1), default=None, help='Use only the first N fonts of each domain (tests).')
@click.option('--ship-dir', type=click.Path(file_okay=False), default=None, help='Also copy the shipped files (all but source.zip and *_train.zip) and their previews here and rewrite its MANIFEST.json.')
@click.option('--dry-run', is_flag=True, help='Print fonts and planned outputs; write nothing.')
def main(outdir, seed, resolution, channels, fonts_root, datasets, heldout_regex, source_size, source_test_size,
         shots, val_size, test_size, train_size, size_jitter, shift, rotation, max_chars, max_fonts, ship_dir, dry_run):
    """Render the source / near / far glyph datasets as stylegan2-ada dataset zips."""
    opts = GlyphDataOptions(seed=seed, resolution=resolution, channels=int(channels), fonts_root=fonts_root,
                            datasets=tuple(datasets), heldout_regex=heldout_regex, source_size=source_size,
                            source_test_size=source_test_size, shots=tuple(shots), val_size=val_size,
                            test_size=test_size, train_size=train_size, size_jitter=size_jitter, shift=shift,
                            rotation=rotation, max_chars=max_chars, max_fonts=max_fonts)
    make_glyph_data(outdir, opts, ship_dir=ship_dir, dry_run=dry_run, log=click.echo)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
