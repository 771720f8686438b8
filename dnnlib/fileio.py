"""Atomic file writes: a reader never sees a half-written file under its final name."""
import json
import os
import tempfile


def atomic_write_bytes(path, data):
    """Write `data` to `path` via a temp file in the same folder, fsync, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path, obj):
    """Write `obj` as indented JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode())


def append_line(path, line):
    """Append one text line and flush it to disk (for .jsonl logs)."""
    with open(path, 'a') as f:
        f.write(line.rstrip('\n') + '\n')
        f.flush()
        os.fsync(f.fileno())
