"""npm tarballs: fetch through the project's download cache, verify npm's SRI integrity, read members."""
import base64
import hashlib
import os
import tarfile

from dnnlib.util import DownloadError, open_url

_CHUNK_BYTES = 1 << 20


class EmojiDataError(Exception):
    """A user-facing problem building the emoji data (one line naming the file or package)."""


def sri_digest(path, algorithm='sha512'):
    """Subresource-integrity string of a file, e.g. 'sha512-<base64 digest>' as npm records it."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b''):
            h.update(chunk)
    return f'{algorithm}-{base64.b64encode(h.digest()).decode()}'


def check_integrity(path, package):
    """Raise EmojiDataError unless the tarball at `path` has `package.integrity` (an NpmPackage)."""
    algorithm = package.integrity.split('-', 1)[0]
    if algorithm not in ('sha512', 'sha384', 'sha256'):
        raise EmojiDataError(f'{package.name}@{package.version}: unsupported integrity {package.integrity!r}')
    got = sri_digest(path, algorithm)
    if got != package.integrity:
        raise EmojiDataError(f'{package.name}@{package.version}: integrity mismatch for {path} '
                             f'(expected {package.integrity}, got {got}); delete the file and fetch it again')


def fetch_tarball(package, tarball=None, cache_dir=None):
    """Local path of `package`'s verified tarball.

    package: NpmPackage. tarball: a local .tgz to use instead of downloading (None = download
    `package.url` into the download cache, or reuse the cached copy). cache_dir: None = the project's
    cache ($FSGAN_CACHE_DIR/downloads, see dnnlib.util.make_cache_dir_path).
    """
    if tarball is not None:
        if not os.path.isfile(tarball):
            raise EmojiDataError(f'{tarball}: no such file (tarball for {package.name}@{package.version})')
        path = tarball
    else:
        try:
            path = open_url(package.url, cache_dir=cache_dir, return_filename=True, timeout=120.0)
        except DownloadError as e:
            raise EmojiDataError(f'{package.name}@{package.version}: {e}') from None
    check_integrity(path, package)
    return path


def read_members(path, keep):
    """Bytes of every regular member whose name passes `keep(name)`, in one streaming pass.

    Returns dict member name -> bytes. A gzip tarball is read front to back once, so the memory held
    is only that of the kept members.
    """
    out = {}
    try:
        with tarfile.open(path, mode='r|gz') as tar:
            for member in tar:
                if member.isfile() and keep(member.name):
                    out[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise EmojiDataError(f'{path}: not a readable .tgz ({type(e).__name__}: {e})') from None
    return out
