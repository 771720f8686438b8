"""The training-option table (fsgan/options.py): click options, checks and the grouped training_options.json,
and run folders whose training_options.json is still flat."""
import json
import os

import pytest
import torch
from click.testing import CliRunner

from fsgan import options, run_setup
from fsgan.options import (BY_KEY, GROUPS, OPTIONS, SetupError, check_train_option, flatten_options, group_options,
                           read_training_options, write_training_options)
from fsgan.run_options import RunOptionsError, load_run_options
from scripts import train as train_cli

pytestmark = pytest.mark.usefixtures('one_thread')
TINY = ['--batch', '4', '--tick', '0.004', '--snap', '1', '--no-progress', '--shots', '5']


def _train(args):
    return CliRunner().invoke(train_cli.main, [str(a) for a in args])


def _one_line_error(res, *words):
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0 and len(lines) == 1 and lines[0].startswith('Error:'), res.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_every_command_line_option_comes_from_the_table():
    params = {p.name: p for p in train_cli.main.params}
    table = [o for o in OPTIONS if o.flags]
    assert [p.name for p in train_cli.main.params] == [o.name for o in table] + ['resume_run', 'dry_run',
                                                                                 'no_progress']
    for o in table:
        p = params[o.name]
        assert tuple(p.opts) == o.flags and p.help == o.help
        assert o.default is None or (p.default == o.default and p.show_default)
    help_text = CliRunner().invoke(train_cli.main, ['--help'], terminal_width=200).output
    assert '--gamma FLOAT RANGE' in help_text and 'R1 weight.  [default: 10.0; x>=0]' in help_text
    assert '--style-mixing FLOAT RANGE' in help_text and '[default: 0.9; 0<=x<=1]' in help_text


def test_comparison_bounds_and_choices_derive_from_the_table():
    assert options.TRAIN_OPTION_BOUNDS == {
        'lr': '> 0', 'dlr': '> 0', 'gamma': '>= 0', 'pl_weight': '>= 0', 'style_mixing': 'in [0, 1]',
        'mode_seeking': '>= 0', 'mode_seeking_hinge': '0 or 1', 'class_loss': '>= 0', 'aug_p': 'in [0, 1]',
        'ada_target': 'in [0, 1]', 'ada_kimg': '> 0'}
    assert options.TRAIN_OPTION_CHOICES['aug'] == ('noaug', 'none', 'ada', 'fixed', 'diffaug')
    assert run_setup.TRAIN_OPTION_BOUNDS is options.TRAIN_OPTION_BOUNDS  # fsgan.compare reads them there
    assert check_train_option('lr', '0.5') == 0.5 and check_train_option('mode_seeking_hinge', 'yes') == 1.0
    for key, value in (('lr', '0'), ('style_mixing', '1.5'), ('gamma', 'nan'), ('aug', 'bogus'),
                       ('mode_seeking_hinge', '2')):
        with pytest.raises(SetupError, match=key):
            check_train_option(key, value)


def test_setup_checks_every_bounded_option(target_dir, p1_path):
    with pytest.raises(SetupError, match='--shots: shots must be an integer >= 1'):
        run_setup.setup_training_config(target_dir, resume=p1_path, shots=0, device='cpu')
    with pytest.raises(SetupError, match='--tick: kimg_per_tick must be a finite number > 0'):
        run_setup.setup_training_config(target_dir, resume=p1_path, kimg_per_tick=0, device='cpu')
    with pytest.raises(SetupError, match='--nan-policy: nan_policy must be one of stop, rollback'):
        run_setup.setup_training_config(target_dir, resume=p1_path, nan_policy='retry', device='cpu')
    with pytest.raises(TypeError, match='unknown training option.*bogus'):
        run_setup.setup_training_config(target_dir, bogus=1)
    c = run_setup.setup_training_config(target_dir, resume=p1_path, device='cpu', method='freezed',
                                        method_options=('freezed=2',), losses=('mode_seeking=2',),
                                        track_w_avg='false')  # click's raw values pass straight through
    assert c.method_options == dict(freezed=2) and c.losses['mode_seeking']['weight'] == 2.0
    assert c.track_w_avg is False


def test_every_recorded_key_has_one_group(target_dir, p1_path):
    c = run_setup.setup_training_config(target_dir, resume=p1_path, device='cpu')
    c.update(resolution=32, G_kwargs={}, D_kwargs={})
    grouped = group_options(c)
    assert list(grouped) == [g for g in GROUPS if g in grouped]
    assert grouped['optimiser']['lr'] == c.lr and grouped['run']['device'] == 'cpu'
    assert grouped['augmentation'] == dict(aug='none', augment_kwargs=dict(name='none'))
    assert flatten_options(grouped) == dict(c)
    assert flatten_options(dict(c)) == dict(c)                  # flat: as it is
    with pytest.raises(ValueError, match="'bogus' has no group"):
        group_options(dict(c, bogus=1))
    assert all(BY_KEY[k].group == g for g, entries in grouped.items() for k in entries)


@pytest.fixture(scope='module')
def short_run(p1_path, target_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('short')
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--outdir', out, '--kimg', '0.004'] + TINY)
    assert res.exit_code == 0, res.output
    return os.path.join(out, os.listdir(out)[0])


def test_the_run_folder_records_the_grouped_form(short_run):
    with open(os.path.join(short_run, 'training_options.json')) as f:
        grouped = json.load(f)
    assert set(grouped) <= set(GROUPS) and grouped['method']['method'] == 'fsgan'
    assert grouped['optimiser']['batch'] == 4 and grouped['data']['shots'] == 5 and grouped['run']['kimg'] == 0.004
    assert read_training_options(os.path.join(short_run, 'training_options.json')) == flatten_options(grouped)
    ck = torch.load(os.path.join(short_run, 'checkpoint.pt'), weights_only=True)
    assert ck['options'] == flatten_options(grouped)            # the checkpoint keeps the flat view


def test_a_flat_training_options_file_still_resumes(short_run, tmp_path):
    """A run folder written before the grouping (flat training_options.json, as atomic_write_json wrote the
    options) continues with --resume-run and --kimg, and its file is rewritten grouped."""
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(short_run, run)
    path = run / 'training_options.json'
    flat = read_training_options(path)
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + '\n')   # the flat form of earlier runs
    assert load_run_options(str(run)) == flat
    res = _train(['--resume-run', run, '--kimg', '0.008', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['cur_nimg'] == 8
    again = json.loads(path.read_text())
    assert set(again) <= set(GROUPS) and again['run']['kimg'] == 0.008
    assert flatten_options(again) == dict(flat, kimg=0.008)


@pytest.mark.parametrize('edit, words', [
    (lambda g: g['loss'].update(lr=g['optimiser'].pop('lr')), ['"lr" belongs in "optimiser", not in "loss"']),
    (lambda g: g['run'].update(bogus=1), ['"bogus" is no training option', 'remove it']),
    (lambda g: g.update(kimg=0.012), ['groups', 'beside other top-level keys']),
    (lambda g: g['run'].pop('device'), ['"device" is missing', '"run"']),
    (lambda g: g['optimiser'].update(lr=0), ['"lr" is 0, not a number > 0']),
])
def test_hand_edited_grouped_files_fail_in_one_line(short_run, tmp_path, edit, words):
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(short_run, run)
    path = run / 'training_options.json'
    grouped = json.loads(path.read_text())
    edit(grouped)
    path.write_text(json.dumps(grouped))
    with pytest.raises(RunOptionsError):
        load_run_options(str(run))
    _one_line_error(_train(['--resume-run', run, '--kimg', '0.008']), 'training_options.json', *words)


def test_unknown_key_in_a_flat_file_is_named(short_run, tmp_path):
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(short_run, run)
    flat = read_training_options(run / 'training_options.json')
    write_training_options(run / 'training_options.json', flat)  # grouped again: loads
    assert load_run_options(str(run)) == flat
    (run / 'training_options.json').write_text(json.dumps(dict(flat, colour='blue')))
    with pytest.raises(RunOptionsError, match='"colour" is no training option'):
        load_run_options(str(run))
