"""Small general-purpose helpers: EasyDict, and opening URLs through a download cache."""

import hashlib
import os
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from dnnlib.fileio import NEW_FILE_MODE


class EasyDict(dict):
    """A dict whose keys can also be read and written as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]


# ----------------------------------------------------------------------------
# URL download with a cache.

CACHE_DIR_ENV = 'FSGAN_CACHE_DIR'
_CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A URL could not be fetched completely (network error, HTTP error, short read, hash mismatch)."""


def make_cache_dir_path(*paths):
    """Path inside the cache root: $FSGAN_CACHE_DIR if set, else ~/.cache/fsgan. Nothing is created."""
    root = os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'fsgan')
    return os.path.join(root, *paths)


def cache_file_name(url):
    """Cache file name for `url`: md5 hex digest of the whole URL, '_', then the URL's sanitized basename."""
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    base = os.path.basename(urllib.parse.urlparse(url).path)
    base = re.sub(r'[^A-Za-z0-9._-]', '_', base)[-100:].lstrip('.') or 'download'
    return f'{url_md5}_{base}'


def file_sha256(path):
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b''):
            h.update(chunk)
    return h.hexdigest()


def _local_path(url):
    """Local file path for a file:// URL or a plain path; None for http(s) URLs. Raises ValueError for other schemes."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ('http', 'https'):
        return None
    if parsed.scheme == 'file':
        if parsed.netloc not in ('', 'localhost'):
            raise ValueError(f'{url}: file:// URLs must name a local file (file:///abs/path)')
        return urllib.request.url2pathname(parsed.path)
    if '://' in url:
        raise ValueError(f'{url}: unsupported URL scheme {parsed.scheme!r}; '
                         f'use http://, https://, file:// or a plain path')
    return url


def _download_once(url, dest_dir, final_name, sha256, timeout, verbose):
    """Fetch `url` into a temp file in `dest_dir`, check length and hash, then rename it to `final_name`.

    Raises DownloadError; `retry` attribute (bool) says whether another attempt may help.
    """
    import requests  # imported here: only downloads need it

    fd, tmp_path = tempfile.mkstemp(dir=dest_dir, prefix='.tmp-', suffix='.part')
    os.chmod(tmp_path, NEW_FILE_MODE)
    try:
        h = hashlib.sha256()
        received = 0
        with os.fdopen(fd, 'wb') as out:
            try:
                with requests.get(url, stream=True, timeout=timeout,
                                  headers={'Accept-Encoding': 'identity'}) as res:
                    if res.status_code != 200:
                        err = DownloadError(f'{url}: HTTP {res.status_code} {res.reason}')
                        err.retry = res.status_code >= 500 or res.status_code in (408, 429)
                        raise err
                    encoding = res.headers.get('Content-Encoding', 'identity').lower()
                    length = res.headers.get('Content-Length')
                    # Content-Length counts the bytes on the wire; with identity encoding that is the body.
                    known = length is not None and length.isdigit() and encoding == 'identity'
                    expected = int(length) if known else None
                    for chunk in res.iter_content(chunk_size=_CHUNK_BYTES):
                        out.write(chunk)
                        h.update(chunk)
                        received += len(chunk)
            except requests.RequestException as exc:
                err = DownloadError(f'{url}: connection failed after {received} bytes ({_short_reason(exc)})')
                err.retry = True
                raise err from exc
            if expected is not None and received != expected:
                err = DownloadError(f'{url}: short read, got {received} of {expected} bytes (Content-Length)')
                err.retry = True
                raise err
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            err = DownloadError(f'{url}: sha256 mismatch, expected {sha256.lower()}, got {digest}')
            err.retry = False
            raise err
        final_path = os.path.join(dest_dir, final_name)
        os.replace(tmp_path, final_path)
        if verbose:
            print(f' done ({received} bytes)', file=sys.stderr, flush=True)
        return final_path
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _short_reason(exc):
    """The innermost cause of a requests exception in a few words, e.g. 'Connection refused' or
    'ReadTimeout' (requests wraps urllib3's errors several times, repeating the URL each time)."""
    inner = exc
    while inner.__cause__ is not None or (inner.args and isinstance(inner.args[0], BaseException)):
        inner = inner.__cause__ if inner.__cause__ is not None else inner.args[0]
    text = str(inner)
    match = re.search(r'\[Errno -?\d+\] ([^\])\'"]+)', text)
    return match.group(1) if match else type(inner).__name__ if len(text) > 120 or not text else text


def open_url(url, cache_dir=None, num_attempts=3, verbose=True, return_filename=False,
             sha256=None, timeout=60.0, retry_delay=2.0):
    """Open `url` for binary reading, downloading http(s) URLs into a cache first.

    url: http(s)://, file:// URL, or a plain local path.
    cache_dir: folder for downloads; default make_cache_dir_path('downloads'). A cached file is
        <cache_dir>/<md5(url)>_<basename>; when present (and matching `sha256`, if given) no request is made.
    num_attempts: tries for network errors, HTTP 5xx and short reads (HTTP 4xx and hash mismatches are not retried).
    sha256: optional expected hex digest of the file bytes.
    timeout: seconds for connecting and for each read; retry_delay: seconds between attempts.
    Returns an open binary file, or its path when return_filename=True.
    Downloads go to a temp file in cache_dir and are renamed only when complete, so the final
    name never holds a partial file. Raises DownloadError, or FileNotFoundError for a missing local file.
    """
    path = _local_path(url)
    if path is not None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{url}: no such file')
        if sha256 is not None and file_sha256(path) != sha256.lower():
            raise DownloadError(f'{url}: sha256 mismatch, expected {sha256.lower()}')
        return path if return_filename else open(path, 'rb')

    if num_attempts < 1:
        raise ValueError(f'open_url: num_attempts must be >= 1, got {num_attempts}')
    cache_dir = make_cache_dir_path('downloads') if cache_dir is None else os.fspath(cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    name = cache_file_name(url)
    cached = os.path.join(cache_dir, name)
    if os.path.isfile(cached) and (sha256 is None or file_sha256(cached) == sha256.lower()):
        return cached if return_filename else open(cached, 'rb')

    for attempt in range(1, num_attempts + 1):
        if verbose:
            print(f'Downloading {url} ...', end='', file=sys.stderr, flush=True)
        try:
            cached = _download_once(url, cache_dir, name, sha256, timeout, verbose)
            break
        except DownloadError as exc:
            if verbose:
                print(' failed', file=sys.stderr, flush=True)
            if not exc.retry or attempt == num_attempts:
                raise DownloadError(f'{exc} [attempt {attempt} of {num_attempts}]; nothing was stored under '
                                    f'{cached}. Check the URL and the network, or download the file '
                                    f'yourself and pass its local path.') from exc
            time.sleep(retry_delay)
    return cached if return_filename else open(cached, 'rb')

