"""Checks of tool options shared by the library and the command-line tools: output paths and --device.

Each raises fsgan.tools.errors.OptionError naming the option (printed as one line by fsgan.tools.cli).
"""
import os

from fsgan.tools.errors import OptionError


def resolve_device(name):
    """'cpu' or 'cuda' as given, None -> 'cuda' when available, else 'cpu'; OptionError for an unavailable cuda."""
    import torch
    if name is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise OptionError('CUDA is not available here; use --device cpu', '--device')
    return name


def _check_creatable(path, folder, option):
    """The nearest existing folder above `folder` (or `folder` itself) must be a writable folder."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OptionError(f'{path}: cannot create it: {probe} is a file, not a folder', option)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OptionError(f'{path}: cannot create it: {probe} is not writable; choose another path', option)


def check_output_file(path, option, overwrite=False):
    """Check, before any work, that file `path` can be written; touches nothing.

    OptionError naming `option` when it is a folder, when it exists and `overwrite` is False, or
    when its folder cannot be created or written. Returns True when an existing file will be replaced.
    """
    if os.path.isdir(path):
        raise OptionError(f'{path} is a folder; give a file name', option)
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise OptionError(f'{path} exists; give --overwrite to replace it, or another path', option)
    _check_creatable(path, os.path.dirname(os.path.abspath(path)), option)
    return exists


def check_output_dir(path, option, overwrite=False):
    """Check, before any work, that folder `path` can receive new files; touches nothing.

    OptionError naming `option` when it is a file, when it is a non-empty folder and `overwrite` is
    False, or when it cannot be created or written. Returns the number of entries already there.
    """
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OptionError(f'{path} is a file, not a folder; give a folder', option)
    if not os.path.isdir(path):
        _check_creatable(path, path, option)
        return 0
    count = len(os.listdir(path))
    if count and not overwrite:
        raise OptionError(f'{path} is not empty ({count} entries); give --overwrite to write into it, '
                          f'or a new folder', option)
    if not os.access(path, os.W_OK | os.X_OK):
        raise OptionError(f'{path} is not writable; choose another folder', option)
    return count
