"""Conventions every command-line tool in scripts/ shares.

  * `command()`: -h and --help, and usage mistakes (a bad or missing option) as one line
    'Error: Invalid value for '--x': ...' with exit code 2, without click's Usage block;
  * `resolve_device()`: --device defaults to cuda when it is available;
  * `FINITE`: a float option type that refuses nan and inf;
  * `check_output_file()` / `check_output_dir()`: output paths are checked before any work, and an
    existing output is replaced only with --overwrite;
  * the library's fsgan.tools.errors (OptionError, ToolError) become the same one-line errors.
"""
import math

import click

from fsgan.tools.checks import check_output_dir, check_output_file, resolve_device  # noqa: F401 (for the scripts)
from fsgan.tools.errors import OptionError, ToolError

HELP_OPTIONS = dict(help_option_names=['-h', '--help'])


class OneLineUsageError(click.ClickException):
    """A usage mistake printed as one 'Error: ...' line; exit code 2 like click's usage errors."""
    exit_code = 2


def _option_error(e):
    """OptionError -> the one-line usage error click prints for a bad option value."""
    return OneLineUsageError(click.BadParameter(str(e), param_hint=e.option).format_message())


class Command(click.Command):
    """click.Command whose usage errors print one line that names the option."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            raise OneLineUsageError(e.format_message()) from None
        except OptionError as e:
            raise _option_error(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise OneLineUsageError(e.format_message()) from None
        except OptionError as e:
            raise _option_error(e) from None
        except ToolError as e:
            raise click.ClickException(str(e)) from None


def interrupted(advice):
    """The one-line error of a tool stopped by Ctrl-C: 'interrupted; <advice>', exit code 130 (as a shell's)."""
    error = click.ClickException(f'interrupted; {advice}' if advice else 'interrupted')
    error.exit_code = 130
    return error


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


def overwrite_option(what):
    """--overwrite: allow replacing `what` (e.g. 'an existing --out file')."""
    return click.option('--overwrite', is_flag=True, help=f'Replace {what} [default: refuse].')
