"""Small helpers shared by the metrics: atomic file writes and hashing."""

import contextlib
import hashlib
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
    """Open a temporary file next to `path`; on success it replaces `path` atomically.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
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


def sha256_bytes(data):
    """Hex sha256 of a bytes object."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk_size=1 << 20):
    """Hex sha256 of a file's contents, read in chunks of `chunk_size` bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            h.update(block)
    return h.hexdigest()
