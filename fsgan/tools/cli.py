"""Conventions every command-line tool in scripts/ shares.

  * `command()`: -h and --help, and usage mistakes (a bad or missing option) as one line
    'Error: Invalid value for '--x': ...' with exit code 2, without click's Usage block;
  * `resolve_device()`: --device defaults to cuda when it is available;
  * `FINITE`: a float option type that refuses nan and inf;
  * `check_output_file()` / `check_output_dir()`: output paths are checked before any work, and an
    existing output is replaced only with --overwrite.
"""
import math
import os

import click

HELP_OPTIONS = dict(help_option_names=['-h', '--help'])


class OneLineUsageError(click.ClickException):
    """A usage mistake printed as one 'Error: ...' line; exit code 2 like click's usage errors."""
    exit_code = 2


class Command(click.Command):
    """click.Command whose usage errors print one line that names the option."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            raise OneLineUsageError(e.format_message()) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise OneLineUsageError(e.format_message()) from None


def command(**kwargs):
    """click.command with -h/--help and one-line usage errors."""
    settings = dict(HELP_OPTIONS, **kwargs.pop('context_settings', {}))
    return click.command(cls=Command, context_settings=settings, **kwargs)


class FiniteFloat(click.ParamType):
    """A float option that must be finite (nan and inf are refused)."""
    name = 'float'

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f'{value!r} is not a number', param, ctx)
        if not math.isfinite(number):
            self.fail(f'{value!r} is not a finite number', param, ctx)
        return number


FINITE = FiniteFloat()


def device_option(**kwargs):
    """The --device option of every tool (None = cuda when available, see resolve_device)."""
    return click.option('--device', type=click.Choice(['cpu', 'cuda']),
                        help='Device [default: cuda when available].', **kwargs)


def resolve_device(name):
    """'cpu' or 'cuda' as given, None -> 'cuda' when available, else 'cpu'; BadParameter for an unavailable cuda."""
    import torch
    if name is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter('CUDA is not available here; use --device cpu', param_hint='--device')
    return name


def overwrite_option(what):
    """--overwrite: allow replacing `what` (e.g. 'an existing --out file')."""
    return click.option('--overwrite', is_flag=True, help=f'Replace {what} [default: refuse].')


def _check_creatable(path, folder, option):
    """The nearest existing folder above `folder` (or `folder` itself) must be a writable folder."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise click.BadParameter(f'{path}: cannot create it: {probe} is a file, not a folder', param_hint=option)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise click.BadParameter(f'{path}: cannot create it: {probe} is not writable; choose another path',
                                 param_hint=option)


def check_output_file(path, option, overwrite=False):
    """Check, before any work, that file `path` can be written; touches nothing.

    BadParameter naming `option` when it is a folder, when it exists and `overwrite` is False, or
    when its folder cannot be created or written. Returns True when an existing file will be replaced.
    """
    if os.path.isdir(path):
        raise click.BadParameter(f'{path} is a folder; give a file name', param_hint=option)
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise click.BadParameter(f'{path} exists; give --overwrite to replace it, or another path', param_hint=option)
    _check_creatable(path, os.path.dirname(os.path.abspath(path)), option)
    return exists


def check_output_dir(path, option, overwrite=False):
    """Check, before any work, that folder `path` can receive new files; touches nothing.

    BadParameter naming `option` when it is a file, when it is a non-empty folder and `overwrite` is
    False, or when it cannot be created or written. Returns the number of entries already there.
    """
    if os.path.lexists(path) and not os.path.isdir(path):
        raise click.BadParameter(f'{path} is a file, not a folder; give a folder', param_hint=option)
    if not os.path.isdir(path):
        _check_creatable(path, path, option)
        return 0
    count = len(os.listdir(path))
    if count and not overwrite:
        raise click.BadParameter(f'{path} is not empty ({count} entries); give --overwrite to write into it, '
                                 f'or a new folder', param_hint=option)
    if not os.access(path, os.W_OK | os.X_OK):
        raise click.BadParameter(f'{path} is not writable; choose another folder', param_hint=option)
    return count
