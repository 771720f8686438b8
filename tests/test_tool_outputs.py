"""The tools never replace earlier outputs unasked, check every option and output path before any work,
and report each mistake in one line naming the option."""
import importlib
import importlib.util
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures('one_thread')


def _calc_metrics():
    spec = importlib.util.spec_from_file_location('calc_metrics_cli', os.path.join(ROOT, 'scripts', 'calc_metrics.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(name):
    return _calc_metrics() if name == 'calc_metrics' else importlib.import_module(f'scripts.{name}')


def _invoke(name, args):
    return CliRunner().invoke(_cli(name).main, [str(a) for a in args])


def _one_line_error(res, *words):
    """A failed run whose stderr is one 'Error:' line containing every word (no Usage block, no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0, res.output
    assert len(lines) == 1 and lines[0].startswith('Error:'), res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _earlier(folder, name='seed0000.png'):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b'earlier')
    return folder / name


def test_generate_refuses_a_non_empty_outdir(p1_path, tmp_path):
    earlier = _earlier(tmp_path / 'out')
    res = _invoke('generate', ['--network', p1_path, '--seeds', '0-1', '--outdir', tmp_path / 'out'])
    _one_line_error(res, '--outdir', 'not empty', '--overwrite')
    assert earlier.read_bytes() == b'earlier' and os.listdir(tmp_path / 'out') == ['seed0000.png']
    res = _invoke('generate', ['--network', p1_path, '--seeds', '0-1', '--outdir', tmp_path / 'out', '--overwrite'])
    assert res.exit_code == 0 and 'held 1 entries before' in res.output, res.output
    assert earlier.read_bytes() != b'earlier' and sorted(os.listdir(tmp_path / 'out')) == ['seed0000.png',
                                                                                            'seed0001.png']


@pytest.mark.parametrize('tool, args', [
    ('interpolate', ['--seeds', '0,1', '--frames-per-transition', '2', '--no-progress']),
    ('svd_explore', ['--layer', 'mapping.fc0', '--top', '1', '--seeds', '0']),
    ('glyph_eval', ['--num', '4']),
])
def test_an_existing_out_file_is_kept(p1_path, tmp_path, tool, args):
    name = {'interpolate': 'video.mp4', 'svd_explore': 'fig.png', 'glyph_eval': 'report.json'}[tool]
    earlier = _earlier(tmp_path, name)
    res = _invoke(tool, ['--network', p1_path, '--out', earlier] + args)
    _one_line_error(res, '--out', 'exists', '--overwrite')
    assert earlier.read_bytes() == b'earlier' and os.listdir(tmp_path) == [name]


def test_interpolate_overwrite_says_what_it_replaced(p1_path, tmp_path):
    earlier = _earlier(tmp_path, 'video.mp4')
    res = _invoke('interpolate', ['--network', p1_path, '--seeds', '0,1', '--frames-per-transition', '2',
                                  '--out', earlier, '--overwrite'])
    assert res.exit_code == 0 and f'--overwrite: replaced {earlier}' in res.output, res.output
    assert earlier.read_bytes() != b'earlier'


def test_svd_explore_overwrite_replaces_the_figure(p1_path, tmp_path):
    earlier = _earlier(tmp_path, 'fig.png')
    res = _invoke('svd_explore', ['--network', p1_path, '--layer', 'mapping.fc0', '--top', '1', '--seeds', '0',
                                  '--out', earlier, '--overwrite'])
    assert res.exit_code == 0, res.output
    assert earlier.read_bytes()[:4] == b'\x89PNG'


def test_calc_metrics_appends_only_to_json_lines(tmp_path):
    import PIL.Image
    gen = tmp_path / 'gen'
    gen.mkdir()
    for i in range(3):
        PIL.Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(gen / f'{i}.png')
    report = tmp_path / 'report.json'
    for text in ('{"not": "json lines"\n', '{"a": 1}\n'):   # the second: JSON lines, but no metric records
        report.write_text(text)
        res = _invoke('calc_metrics', ['--gen-dir', gen, '--metrics', 'sharpness', '--out', report])
        _one_line_error(res, '--out', 'not a JSON-lines file', '--overwrite')
        assert report.read_text() == text
    res = _invoke('calc_metrics', ['--gen-dir', gen, '--metrics', 'sharpness', '--out', report, '--overwrite'])
    assert res.exit_code == 0 and f'Replaced (--overwrite) {report}' in res.output, res.output
    assert '"metric": "sharpness"' in report.read_text() and '"a"' not in report.read_text()
    res = _invoke('calc_metrics', ['--gen-dir', gen, '--metrics', 'sharpness', '--out', report])
    assert res.exit_code == 0 and f'Appended to {report}' in res.output, res.output


def test_ctrl_c_in_generate_and_calc_metrics_is_one_line(p1_path, tmp_path, monkeypatch):
    import fsgan.evaluate
    from scripts import generate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(generate, 'write_seed_images', interrupted)
    res = _invoke('generate', ['--network', p1_path, '--outdir', tmp_path / 'gen'])
    assert res.exit_code == 130 and res.output.strip().splitlines()[-1].startswith('Error: interrupted; '), res.output
    monkeypatch.setattr(fsgan.evaluate, 'calc_metrics', interrupted)
    res = _invoke('calc_metrics', ['--network', p1_path, '--metrics', 'sharpness', '--out', tmp_path / 'm.jsonl'])
    assert res.exit_code == 130 and res.output.strip().splitlines()[-1] == \
        'Error: interrupted; nothing was written to --out', res.output


def test_a_failed_write_of_out_still_shows_the_results(tmp_path, monkeypatch):
    import fsgan.evaluate
    import PIL.Image
    gen = tmp_path / 'gen'
    gen.mkdir()
    for i in range(3):
        PIL.Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(gen / f'{i}.png')

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(fsgan.evaluate, 'write_jsonl', disk_full)
    res = _invoke('calc_metrics', ['--gen-dir', gen, '--metrics', 'sharpness', '--out', tmp_path / 'm.jsonl'])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and 'sharpness' in res.output and 'Traceback' not in res.output, res.output
    assert lines[-1].startswith('Error: --out') and 'No space left on device' in lines[-1], res.output


def test_output_paths_are_checked_before_any_work(p1_path, tmp_path, monkeypatch):
    """An unwritable --out fails at once: the network is neither loaded nor sampled."""
    import fsgan.evaluate
    import fsgan.sampling

    def refuse(*args, **kwargs):
        raise AssertionError('work started before the output path was checked')
    monkeypatch.setattr(fsgan.evaluate, 'write_samples', refuse)
    monkeypatch.setattr(fsgan.sampling, 'load_generator', refuse)
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    res = _invoke('calc_metrics', ['--network', p1_path, '--metrics', 'sharpness', '--num', '2',
                                   '--out', blocker / 'm.jsonl'])
    _one_line_error(res, '--out', 'cannot create it', 'is a file')
    res = _invoke('glyph_eval', ['--network', p1_path, '--num', '2', '--out', blocker / 'r.json'])
    _one_line_error(res, '--out', 'cannot create it')
    for args in (['--outdir', blocker], ['--outdir', blocker / 'sub']):
        res = _invoke('generate', ['--network', p1_path] + args)
        _one_line_error(res, '--outdir', 'not a folder' if args[1] == blocker else 'cannot create it')


def test_failed_runs_leave_no_empty_folder(p2_path, tmp_path):
    out = tmp_path / 'new'
    _one_line_error(_invoke('generate', ['--network', p2_path, '--class', '7', '--outdir', out]), '--class')
    _one_line_error(_invoke('generate', ['--network', tmp_path / 'nope.pkl', '--outdir', out]), 'nope.pkl')
    _one_line_error(_invoke('interpolate', ['--network', p2_path, '--seeds', '0,1', '--class', '7',
                                            '--out', out / 'v.mp4']), '--class')
    assert not out.exists()


def test_generate_streams_images_in_batches(p1_path, tmp_path, monkeypatch):
    """Each batch is on disk before the next one is rendered."""
    from fsgan import sampling
    real, seen = sampling.iter_images, []

    def watched(*args, **kwargs):
        for item in real(*args, **kwargs):
            seen.append(len(os.listdir(tmp_path / 'out')))
            yield item
    monkeypatch.setattr(sampling, 'iter_images', watched)
    res = _invoke('generate', ['--network', p1_path, '--seeds', '0-4', '--batch', '2', '--outdir', tmp_path / 'out'])
    assert res.exit_code == 0, res.output
    assert seen == [0, 2, 4] and len(os.listdir(tmp_path / 'out')) == 5
    assert len(sampling.parse_seed_ranges('0-100000000')[0]) == 100000001  # a range, not a list in memory


def test_batched_generation_matches_seed_by_seed(p1_path):
    from fsgan.sampling import generate_images, iter_images, load_generator
    G, _ = load_generator(p1_path)
    batched = np.concatenate([images for _seeds, images in iter_images(G, range(5), batch=2)])
    assert np.abs(batched.astype(int) - generate_images(G, range(5)).astype(int)).max() <= 1


@pytest.mark.parametrize('tool, args, option', [
    ('generate', ['--seeds', '4294967296', '--outdir', '{tmp}/o'], '--seeds'),
    ('generate', ['--trunc', 'nan', '--outdir', '{tmp}/o'], '--trunc'),
    ('interpolate', ['--seeds', '0,4294967296', '--out', '{tmp}/v.mp4'], '--seeds'),
    ('interpolate', ['--seeds', '0,1', '--trunc', 'inf', '--out', '{tmp}/v.mp4'], '--trunc'),
    ('interpolate', ['--seeds', '0,1', '--fps', '0', '--out', '{tmp}/v.mp4'], '--fps'),
    ('interpolate', ['--seeds', '0,1', '--upscale', '0', '--out', '{tmp}/v.mp4'], '--upscale'),
    ('svd_explore', ['--layer', 'mapping.fc0', '--scales', '1,nan', '--out', '{tmp}/f.png'], '--scales'),
    ('svd_explore', ['--layer', 'mapping.fc0', '--trunc', 'nan', '--out', '{tmp}/f.png'], '--trunc'),
    ('glyph_eval', ['--trunc', 'nan'], '--trunc'),
    ('calc_metrics', ['--trunc', 'nan', '--metrics', 'sharpness'], '--trunc'),
    ('calc_metrics', ['--metrics', 'fid,none'], '--metrics'),
    ('compare', ['--trunc', 'nan', '--outdir', '{tmp}/c'], '--trunc'),
    ('generate', ['--bogus', '1', '--outdir', '{tmp}/o'], '--bogus'),
    ('svd_explore', [], '--layer'),
])
def test_bad_values_one_line_naming_the_option(p1_path, tmp_path, tool, args, option):
    res = _invoke(tool, ['--network' if tool != 'compare' else '--source', p1_path]
                  + [a.format(tmp=tmp_path) for a in args])
    _one_line_error(res, option)
    assert res.exit_code == 2 and not os.listdir(tmp_path)


def test_glyph_eval_on_a_network_of_another_size(p2_path):
    _one_line_error(_invoke('glyph_eval', ['--network', p2_path, '--num', '4']), '--network', '64x64', '32x32')


def test_compare_checks_the_source_before_writing_its_state(p1_path, target_dir, tmp_path):
    outdir = tmp_path / 'cmp'

    def compare(source, target, shots=3):
        return _invoke('compare', ['--source', source, '--target-dir', target, '--shots', shots, '--methods', 'fsgan',
                                   '--kimg', '0.004', '--outdir', outdir, '--no-progress'])
    _one_line_error(compare(tmp_path / 'typo.pkl', target_dir), '--source', 'typo.pkl')
    _one_line_error(compare(p1_path, tmp_path / 'typo'), '--target-dir', 'typo')
    _one_line_error(compare(p1_path, target_dir, shots=50), '--shots 50')
    assert not outdir.exists()  # nothing recorded: the corrected command starts afresh


CLICK_TOOLS = tuple(sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, 'scripts'))
                           if name.endswith('.py') and name != '__init__.py'))
CPU_DEFAULT_TOOLS = ('ship_emoji_source',)  # its record and report are made on the CPU unless asked


def test_the_tool_list_is_every_script():
    assert {'train', 'generate', 'compare', 'bench_ops', 'ship_emoji_source'} <= set(CLICK_TOOLS)
    assert len(CLICK_TOOLS) >= 17


@pytest.mark.parametrize('tool', CLICK_TOOLS)
def test_every_tool_has_short_help_and_one_line_usage_errors(tool):
    res = _invoke(tool, ['-h'])
    assert res.exit_code == 0 and 'Usage:' in res.output, res.output
    text = ' '.join(res.output.split())
    if '--device' in text:
        expected = '[default: cpu]' if tool in CPU_DEFAULT_TOOLS else 'Device [default: cuda when available]'
        assert expected in text
    if '--noise-mode' in text:
        assert 'fixed noise buffers' in text
    _one_line_error(_invoke(tool, ['--no-such-option']), '--no-such-option')


def test_help_texts_agree():
    def text(tool):
        return ' '.join(_invoke(tool, ['-h']).output.split())
    for tool in ('generate', 'interpolate'):
        assert 'default: seed % number of classes' in text(tool)
    metrics_help = text('calc_metrics')
    assert 'short name' in metrics_help and 'KID: number of random subsets' in metrics_help
    assert 'fid50k_full' in metrics_help and 'none' in metrics_help


def test_metric_aliases_of_stylegan2_ada(tmp_path):
    from fsgan.evaluate import resolve_aliases
    cli = _calc_metrics()
    assert resolve_aliases(['fid50k_full', 'kid50k_full'], None) == (['fid', 'kid'], 50000)
    assert resolve_aliases(['fid50k_full'], 64) == (['fid'], 64)
    assert resolve_aliases(['fid'], None) == (['fid'], 5000)
    res = CliRunner().invoke(cli.main, ['--gen-dir', str(tmp_path), '--metrics', 'none'])
    assert res.exit_code == 0 and 'nothing to compute' in res.output, res.output


def test_calc_metrics_shows_progress(tmp_path):
    import PIL.Image
    gen = tmp_path / 'gen'
    gen.mkdir()
    for i in range(2):
        PIL.Image.fromarray(np.full((32, 32, 3), 100 * i, np.uint8)).save(gen / f'{i}.png')
    args = ['--gen-dir', gen, '--metrics', 'fid', '--shots-dir', gen, '--cache-dir', tmp_path / 'cache']
    res = _invoke('calc_metrics', args)
    assert res.exit_code == 0 and 'Inception features, gen (2 images)' in res.stderr, res.output
    assert 'Inception features' not in _invoke('calc_metrics', args + ['--no-progress']).stderr


def test_interpolation_keys_use_each_seeds_class(p2_path):
    """A conditional network: key frames are generate.py's images (class seed % classes), in z and in w."""
    from fsgan.tools import interp
    from fsgan.sampling import generate_images, load_generator
    G, _ = load_generator(p2_path)
    seeds = [1, 5]
    ref = generate_images(G, seeds, trunc=0.8)
    for space in ('z', 'w'):
        frames = interp.render(G, interp.loop_ws(G, seeds, 2, space=space, trunc=0.8))
        for i in range(len(seeds)):
            assert np.abs(frames[2 * i].astype(int) - ref[i].astype(int)).max() <= 1, (space, i)
    fixed = interp.render(G, interp.loop_ws(G, seeds, 2, trunc=0.8, class_idx=0))
    assert np.abs(fixed[2].astype(int) - ref[1].astype(int)).max() > 1  # seed 5 in class 0, not its own class 2
