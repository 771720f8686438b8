"""fsgan.provenance: the sessions record of a run, commit and device labels, and the preset report's section."""
import re

from fsgan import provenance
from fsgan.benchmarks import preset


def test_record_session_appends_one_readable_record_per_session(tmp_path):
    first = provenance.record_session(str(tmp_path), 'cpu', 0)
    with open(tmp_path / provenance.SESSIONS_FILE, 'a') as f:
        f.write('{"date": "cut sh')                           # a write cut short, without its newline
    provenance.record_session(str(tmp_path), 'cpu', 12.5, processes=2)
    with open(tmp_path / provenance.SESSIONS_FILE, 'a') as f:
        f.write('{"device": "cpu", "processes": null, "kimg": "7", "threads": true}\n')   # a hand edit
    records = provenance.read_sessions(str(tmp_path))
    assert [r.get('kimg') for r in records] == [0.0, 12.5, None] and records[0] == first
    assert records[2] == dict(device='cpu')
    assert provenance.where_label(records[2]) == 'cpu ?, ? threads'
    assert records[1]['processes'] == 2 and records[0]['device'] == 'cpu' and records[0]['threads'] >= 1
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00', first['date'])
    assert provenance.read_sessions(str(tmp_path / 'absent')) == []


def test_commit_of_this_checkout_and_outside_git(tmp_path):
    git = provenance.git_commit()
    if git is not None:                                   # an exported tree without .git has no commit
        assert re.fullmatch(r'[0-9a-f]{40}', git['commit']) and isinstance(git['dirty'], bool)
        assert provenance.commit_label(git).startswith(git['commit'][:7])
    assert provenance.git_commit(str(tmp_path)) is None
    assert provenance.commit_label(None) == 'unknown'
    assert provenance.commit_label(dict(commit='0123456789' * 4, dirty=True)) == '0123456 (uncommitted changes)'


def test_where_labels():
    assert provenance.where_label(dict(device='cuda', device_name='NVIDIA H200', processes=1)) == 'cuda NVIDIA H200'
    assert provenance.where_label(dict(device='cpu', device_name='x86_64', threads=2, processes=2)) \
        == 'cpu x86_64, 2 threads (x2 processes)'


def test_places_section_counts_runs_and_lists_those_that_moved():
    places = [dict(cell='near-10shot-seed0', method='fsgan', where=['cpu x86_64, 2 threads'], commits=['aaaaaaa'],
                   kimg=[0.0]),
              dict(cell='near-10shot-seed0', method='tgan', where=['cpu x86_64, 2 threads'], commits=['aaaaaaa'],
                   kimg=[0.0]),
              dict(cell='near-10shot-seed1', method='fsgan', where=['cpu x86_64, 2 threads', 'cuda NVIDIA H200'],
                   commits=['aaaaaaa', 'bbbbbbb'], kimg=[0.0, 8.0])]
    lines = preset.places_section(places)
    assert '- cpu x86_64, 2 threads: 2 runs' in lines
    assert '- cpu x86_64, 2 threads then cuda NVIDIA H200: 1 run' in lines
    assert '- code: commits aaaaaaa, bbbbbbb' in lines
    assert '| near-10shot-seed1 | fsgan | cpu x86_64, 2 threads then cuda NVIDIA H200 | 0, 8 |' in lines
    assert not any('near-10shot-seed0' in line for line in lines)
