"""Atomic file writes: a reader never sees a half-written file under its final name."""
import contextlib
import json
import os
import signal
import tempfile
import threading

_UMASK = os.umask(0)
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK  # what open() would give a new file; mkstemp gives 0600


@contextlib.contextmanager
def atomic_path(path, suffix='.tmp'):
    """Yield the name of a new temp file beside `path` (creating its folder), for writers that need a
    name rather than a file object (ffmpeg, zipfile). On success the file is fsynced and renamed onto
    `path`; on an exception it is removed and `path` is left untouched."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, NEW_FILE_MODE)  # after writing: the mode may not allow writing
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
    """Open a temp file beside `path`; on success it is fsynced and renamed onto `path` (see atomic_path)."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def atomic_write_bytes(path, data):
    """Write `data` to `path` atomically (see atomic_open)."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_json(path, obj):
    """Write `obj` as indented JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode())


def append_line(path, line):
    """Append one text line and flush it to disk (for .jsonl logs)."""
    with open(path, 'a') as f:
        f.write(line.rstrip('\n') + '\n')
        f.flush()
        os.fsync(f.fileno())


def remove_abandoned_temps(folder):
    """Delete the temp files (`.<name>.<random>.tmp`, see atomic_path) that writers killed mid-write left in folder.

    Only call it while no process writes there (a run folder under its lock). Returns the removed names.
    """
    names = [n for n in os.listdir(folder) if n.startswith('.') and n.endswith('.tmp')
             and os.path.isfile(os.path.join(folder, n))]
    for name in names:
        os.remove(os.path.join(folder, name))
    return names


@contextlib.contextmanager
def ctrl_c_deferred():
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block is done, then raise KeyboardInterrupt,
    so that the files it writes are completed. (A KeyboardInterrupt raised inside torch.save's writer reaches the
    caller as a RuntimeError, not as an interrupt.) A second Ctrl-C inside the block interrupts at once.

    Only where Python's own KeyboardInterrupt handler is installed in the main thread; elsewhere (a worker thread,
    SIGINT ignored, a caller's own handler, an enclosing ctrl_c_deferred) the block runs unchanged.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    pending = []

    def hold(_signum, _frame):
        if pending:
            raise KeyboardInterrupt
        pending.append(True)
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt
