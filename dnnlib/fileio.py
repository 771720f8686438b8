"""Atomic file writes: a reader never sees a half-written file under its final name."""
import contextlib
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
    """Open a temp file beside `path` (creating its folder); on success it is fsynced and renamed onto `path`.

    On an exception the temp file is removed and `path` is left untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions of a new file
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


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
