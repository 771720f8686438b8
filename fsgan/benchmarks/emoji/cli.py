"""Command-line pieces the emoji scripts share (scripts/make_emoji_data.py, scripts/train_emoji_classifier.py,
scripts/train_emoji_category_probe.py)."""
import click

from fsgan.tools.cli import check_output_file

from . import paths

VENDORS = tuple(paths.PACKAGES)   # google, twitter, openmoji: the order of the options and of given_tarballs


def tarball_options(f):
    """Decorator: --google-tgz, --twitter-tgz and --openmoji-tgz, a local copy of each pinned npm tarball
    (parameters google_tgz, twitter_tgz, openmoji_tgz; None: download it into the cache)."""
    for vendor in reversed(VENDORS):
        package = paths.PACKAGES[vendor]
        f = click.option(f'--{vendor}-tgz', type=click.Path(exists=True, dir_okay=False), default=None,
                         help=f'Local {package.name}-{package.version}.tgz instead of downloading it.')(f)
    return f


def given_tarballs(google_tgz, twitter_tgz, openmoji_tgz):
    """The tarball options -> {vendor: local path} for those given."""
    return {v: t for v, t in zip(VENDORS, (google_tgz, twitter_tgz, openmoji_tgz)) if t}


def check_weights_out(out, overwrite):
    """--out must name a .pt file; it and the .json record beside it must be new unless --overwrite."""
    if not out.endswith('.pt'):
        raise click.BadParameter('must end with .pt', param_hint='--out')
    check_output_file(out, '--out', overwrite)
    check_output_file(out[:-3] + '.json', '--out', overwrite)
