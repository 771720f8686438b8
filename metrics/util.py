"""Small helpers shared by the metrics (file writes and hashing live in dnnlib)."""

import hashlib

from dnnlib.fileio import atomic_open  # noqa: F401  (re-exported for the metrics)
from dnnlib.util import file_sha256 as sha256_file  # noqa: F401


def sha256_bytes(data):
    """Hex sha256 of a bytes object."""
    return hashlib.sha256(data).hexdigest()
