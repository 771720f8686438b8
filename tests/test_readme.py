"""The README's code runs and says what the tools do."""
import os
import re

import pytest

from tests.conftest import ROOT


def _readme():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def test_python_snippet_runs(monkeypatch, one_thread):
    (snippet,) = re.findall(r'```python\n(.*?)```', _readme(), flags=re.S)
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(compile(snippet, 'README.md', 'exec'), namespace)  # noqa: S102  (the project's own README)
    img, params = namespace['img'], namespace['params']
    assert img.shape == (4, 3, 32, 32)
    img.mean().backward()                                   # the image comes from the adapted G
    in_G = {id(p) for p in namespace['G'].parameters()}
    G_params = [p for p in params if id(p) in in_G]
    assert G_params and all(p.grad is not None for p in G_params)


def test_class_loss_help_and_readme_agree():
    from click.testing import CliRunner
    from scripts import train
    help_text = ' '.join(CliRunner().invoke(train.main, ['--help']).output.split())
    phrase = "a cross-entropy on D's logits of all classes (reals train D, fakes train G)"
    assert phrase in help_text
    assert phrase in ' '.join(_readme().split())


def test_compare_legend_lists_only_shown_columns(tmp_path):
    from fsgan.compare import CSV_COLUMNS, write_tables
    row = {k: None for k in CSV_COLUMNS}
    row.update(method='fsgan', fid_test=12.5, sharpness_mean=1.0, sharpness_std=0.1)
    write_tables(str(tmp_path), [row], dict(num=8), 'psi=1')
    text = (tmp_path / 'metrics.md').read_text()
    assert 'FID test' in text and 'Sharpness' in text
    for absent in ('Memorised', 'Diversity', 'Target script', 'Characters', 'Trainable params', 'glyph'):
        assert absent not in text, absent
    row.update(memorised_glyph=0.5, trainable_params=10)
    write_tables(str(tmp_path), [row], dict(num=8), 'psi=1')
    text = (tmp_path / 'metrics.md').read_text()
    assert 'Memorised (glyph): share' in text and 'Trainable params: numbers' in text
    assert 'Diversity (glyph):' not in text


@pytest.mark.parametrize('needle', ['target_shots.npy', 'EXIF orientation'])
def test_readme_mentions(needle):
    assert needle in _readme()
