"""Where, when and with which code a job ran: the git commit, versions and the device.

Every training run appends one record per start or resume to run_dir/sessions.jsonl (record_session), so a
report can say which machine trained each run and from which commit, including runs continued elsewhere.
"""
import datetime
import json
import os
import platform
import socket
import subprocess
import sys

import torch

from dnnlib.fileio import append_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSIONS_FILE = 'sessions.jsonl'


def git_commit(root=ROOT):
    """{'commit', 'dirty'} of the checkout at `root` (dirty: tracked files differ from HEAD), or None outside
    git or without a git executable."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS='0')  # `git status` must not lock the index a user's git may need
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True, text=True, timeout=20,
                              env=env)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=root,
                               capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return dict(commit=head.stdout.strip(), dirty=bool(dirty.stdout.strip()))


def commit_label(git):
    """'abc1234' or 'abc1234 (uncommitted changes)' for a git_commit() record; 'unknown' for None."""
    if not git:
        return 'unknown'
    return git['commit'][:7] + (' (uncommitted changes)' if git.get('dirty') else '')


def device_name(device):
    """The GPU's name for a CUDA device; the processor (or machine type) for the CPU."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def command_line():
    """The command of this process: the interpreter's file name and sys.argv, space-joined."""
    return ' '.join([os.path.basename(sys.executable)] + sys.argv)


def session_record(device, kimg, processes=1):
    """One sessions.jsonl record: start time (UTC), host, versions, device, CPU threads, processes, commit,
    command, and the kimg the session started at."""
    device = torch.device(device)
    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                host=socket.gethostname(), python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, device=device.type, device_name=device_name(device),
                threads=torch.get_num_threads(), processes=int(processes), git=git_commit(),
                command=command_line(), kimg=float(kimg))


def record_session(run_dir, device, kimg, processes=1):
    """Append this session's record to run_dir/sessions.jsonl (on a line of its own, also after a line that a
    killed writer left unfinished). Returns the record."""
    record = session_record(device, kimg, processes)
    path = os.path.join(run_dir, SESSIONS_FILE)
    line = json.dumps(record)
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        with open(path, 'rb') as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b'\n':
                line = '\n' + line
    append_line(path, line)
    return record


def read_sessions(run_dir):
    """The records of run_dir/sessions.jsonl in order; [] for a run without one (trained before it existed).
    A line that does not parse (a write cut short) is left out; fields of the wrong type read as missing."""
    path = os.path.join(run_dir, SESSIONS_FILE)
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(_checked(record))
    return records


FIELD_TYPES = dict(date=str, host=str, device=str, device_name=str, threads=int, processes=int, kimg=(int, float),
                   git=dict, command=str)


def _checked(record):
    """A sessions.jsonl record with every FIELD_TYPES field of another type (a hand edit) dropped."""
    return {k: v for k, v in record.items()
            if k not in FIELD_TYPES or (isinstance(v, FIELD_TYPES[k]) and not isinstance(v, bool))}


def where_label(record):
    """Short text for where a session ran: 'cuda NVIDIA H200 (x4 processes)' or 'cpu x86_64, 2 threads'."""
    if record.get('device') == 'cuda':
        text = f'cuda {record.get("device_name", "?")}'
    else:
        text = f'{record.get("device", "?")} {record.get("device_name", "?")}, {record.get("threads", "?")} threads'
    if record.get('processes', 1) > 1:  # read_sessions keeps only an int here
        text += f' (x{record["processes"]} processes)'
    return text
