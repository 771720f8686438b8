"""The options a run folder records (training_options.json), checked when the run is resumed.

The file is grouped per component (fsgan.options describes the form); run folders written before the grouping hold
the flat form, which is read as well. A hand-edited or damaged file fails in one line that names the file and the
key, before anything runs (otherwise a missing key surfaces as an AttributeError deep in the training loop). What
each key must be comes from fsgan.options.OPTIONS.
"""
import json
import math
import os

from dnnlib import EasyDict
from fsgan.methods import METHODS
from fsgan.network_urls import NETWORK_URLS
from fsgan.options import BY_KEY, GROUPS, flatten_options, is_grouped


class RunOptionsError(ValueError):
    """training_options.json of a run folder cannot be used (the message names the file and the key)."""


def _number(value, low=None, high=None, open_low=False):
    """value is a finite JSON number (not a boolean) >= low (> low when open_low) and <= high."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        return False
    above = low is None or (value > low if open_low else value >= low)
    return above and (high is None or value <= high)


def _count(value, low, high=None):
    """value is a JSON integer >= low (and <= high)."""
    return (isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)
            and (high is None or value <= high))


def recorded_rule(option):
    """(what the recorded value of `option` must be, test) from its kind and bounds."""
    bound = f' {option.bound_text()}' if option.bound_text() else ''
    if option.check is not None:
        what, test = option.what, option.check
    elif option.kind == 'float':
        what, test = f'a number{bound}', lambda v: _number(v, option.low, option.high, option.low_open)
    elif option.kind == 'int':
        what, test = f'an integer{bound}', lambda v: _count(v, option.low, option.high)
    elif option.kind in ('flag', 'switch'):
        what, test = 'true or false', lambda v: isinstance(v, bool)
    elif option.kind == 'choice':
        what, test = f'one of {", ".join(option.choice_list())}', lambda v: v in option.choice_list()
    elif option.kind in ('pairs', 'object'):
        what, test = 'an object', lambda v: isinstance(v, dict)
    else:
        what, test = option.what or 'a text', lambda v: isinstance(v, str)
    if option.nullable:
        return what, lambda v: v is None or test(v)
    return what, test


def read_options_file(path):
    """The JSON object in `path` (RunOptionsError naming the file when it is missing, unreadable or not one)."""
    try:
        with open(path, encoding='utf-8') as f:
            c = json.load(f)
    except json.JSONDecodeError as e:
        raise RunOptionsError(f'{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); '
                              f'fix it') from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunOptionsError(f'{path}: cannot be read ({e}); restore it') from None
    if not isinstance(c, dict):
        raise RunOptionsError(f'{path}: holds a JSON {type(c).__name__}, not an object of options; restore it')
    return c


def check_layout(path, c):
    """Grouped: every key a training option in its own group; flat (older runs): every key a training option, and no
    group objects among them (RunOptionsError names the key and what to do)."""
    if not is_grouped(c):
        mixed = sorted(k for k, v in c.items() if k in GROUPS and isinstance(v, dict))
        if mixed:
            raise RunOptionsError(f'{path}: has the groups {", ".join(mixed)} beside other top-level keys; put every '
                                  f'key inside its group ({", ".join(GROUPS)})')
    for group, entries in (c.items() if is_grouped(c) else [(None, c)]):
        for key in entries:
            if key not in BY_KEY:
                raise RunOptionsError(f'{path}: "{key}" is no training option (fsgan.options); remove it')
            if group is not None and BY_KEY[key].group != group:
                raise RunOptionsError(f'{path}: "{key}" belongs in "{BY_KEY[key].group}", not in "{group}"; '
                                      f'move it')


def check_keys(path, c):
    """Every recorded key present where required, and of the kind and in the bounds fsgan.options gives."""
    from_scratch = c.get('source') is None  # then the networks' constructor arguments are needed
    for key, option in BY_KEY.items():
        what, ok = recorded_rule(option)
        required = option.required or (from_scratch and key in ('G_kwargs', 'D_kwargs'))
        if required and key not in c:
            raise RunOptionsError(f'{path}: "{key}" is missing ({what}, in "{option.group}"); restore it')
        if (required or c.get(key) is not None) and not ok(c.get(key)):
            raise RunOptionsError(f'{path}: "{key}" is {json.dumps(c[key])}, not {what}; fix it')


def load_run_options(run_dir):
    """The options in run_dir/training_options.json (grouped, or flat from older runs) as a flat EasyDict, checked
    against fsgan.options (and that the device and a relative source path still work here); RunOptionsError
    naming the file and the key."""
    path = os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(path):
        raise RunOptionsError(f'--resume-run {run_dir}: no training_options.json there; give a run folder')
    c = read_options_file(path)
    check_layout(path, c)
    c = flatten_options(c)
    check_keys(path, c)
    check_here(path, c)
    return EasyDict(c)


def check_here(path, c):
    """The recorded method options, device and source work in this process (RunOptionsError otherwise)."""
    import torch
    unknown = sorted(set(c['method_options']) - set(METHODS[c['method']].options))
    if unknown:
        raise RunOptionsError(f'{path}: "method_options" has {", ".join(unknown)}, which method {c["method"]} does not '
                              f'take ({", ".join(METHODS[c["method"]].options) or "none"}); fix it')
    if c['device'] == 'cuda' and not torch.cuda.is_available():
        raise RunOptionsError(f'{path}: "device" is "cuda", but CUDA is not available here; set "cpu" to go on '
                              f'on the CPU')
    source = c['source']
    if source and not os.path.isabs(source) and source not in NETWORK_URLS and '://' not in source \
            and not os.path.exists(source):  # runs before paths were recorded absolute
        raise RunOptionsError(f'{path}: "source" {source} does not exist from {os.getcwd()}; run from the folder '
                              f'the run was started in, or write the network\'s absolute path there')
