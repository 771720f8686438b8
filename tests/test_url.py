"""dnnlib.util.open_url against a local HTTP server: caching, dropped connections, hashes, local paths."""

import hashlib
import os
import time
from http.server import BaseHTTPRequestHandler

import pytest

from dnnlib import util
from dnnlib.util import DownloadError, make_cache_dir_path, open_url
from tests.local_http import local_server

BODY = bytes(range(256)) * 1200  # 300 KiB, several read chunks


class _Handler(BaseHTTPRequestHandler):
    """Serves BODY under paths whose behaviour the test sets in server.modes[path]."""
    timeout = 10  # seconds per socket operation, so a stuck client cannot hold a thread forever

    def do_GET(self):
        self.server.requests.append(self.path)
        mode = self.server.modes.get(self.path, 'missing')
        if mode == 'missing':
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if mode == 'drop':  # announce more than is sent, send half, then close the connection
            self.send_header('Content-Length', str(len(BODY) + 1000))
            self.end_headers()
            self.wfile.write(BODY[:len(BODY) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header('Content-Length', str(len(BODY)))
        self.end_headers()
        if mode == 'stall':
            time.sleep(1.5)
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """Local server on 127.0.0.1 in a thread (tests.local_http)."""
    with local_server(_Handler, monkeypatch, timeout=60, requests=[], modes={}) as srv:
        yield srv


def test_download_then_cache_hit_makes_no_request(server, tmp_path):
    server.modes['/nets/net.pkl'] = 'good'
    url = server.base + '/nets/net.pkl'
    path = open_url(url, cache_dir=tmp_path, verbose=False, return_filename=True)
    assert os.path.basename(path) == hashlib.md5(url.encode()).hexdigest() + '_net.pkl'
    assert os.path.dirname(path) == str(tmp_path)
    with open(path, 'rb') as f:
        assert f.read() == BODY
    assert server.requests == ['/nets/net.pkl']

    with open_url(url, cache_dir=tmp_path, verbose=False) as f:
        assert f.read() == BODY
    assert server.requests == ['/nets/net.pkl']  # served from the cache
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]  # no temp files left


def test_dropped_connection_is_an_error_and_leaves_no_file(server, tmp_path):
    server.modes['/drop.pkl'] = 'drop'
    url = server.base + '/drop.pkl'
    with pytest.raises(DownloadError) as info:
        open_url(url, cache_dir=tmp_path, num_attempts=2, retry_delay=0, verbose=False)
    msg = str(info.value)
    assert url in msg and ('short read' in msg or 'connection failed' in msg) and 'attempt 2 of 2' in msg
    assert server.requests == ['/drop.pkl', '/drop.pkl']  # retried
    assert os.listdir(tmp_path) == []  # neither the final name nor a temp file

    server.modes['/drop.pkl'] = 'good'  # the server recovers: the same URL now downloads
    path = open_url(url, cache_dir=tmp_path, verbose=False, return_filename=True)
    with open(path, 'rb') as f:
        assert f.read() == BODY
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_http_404_is_not_retried(server, tmp_path):
    url = server.base + '/nothing.pkl'
    with pytest.raises(DownloadError, match='HTTP 404'):
        open_url(url, cache_dir=tmp_path, num_attempts=3, retry_delay=0, verbose=False)
    assert server.requests == ['/nothing.pkl']
    assert os.listdir(tmp_path) == []


def test_read_timeout_is_an_error(server, tmp_path):
    server.modes['/slow.pkl'] = 'stall'
    with pytest.raises(DownloadError, match='connection failed'):
        open_url(server.base + '/slow.pkl', cache_dir=tmp_path, num_attempts=1, timeout=0.3, verbose=False)
    assert os.listdir(tmp_path) == []


def test_a_refused_connection_is_named_in_a_few_words(tmp_path):
    import socket
    with socket.socket() as s:                               # a port nothing listens on
        s.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{s.getsockname()[1]}/x.pkl'
    with pytest.raises(DownloadError) as info:
        open_url(url, cache_dir=tmp_path, num_attempts=1, verbose=False)
    message = str(info.value)
    assert f'{url}: connection failed after 0 bytes (Connection refused)' in message
    assert message.count('127.0.0.1') == 1 and 'HTTPConnectionPool' not in message


def test_sha256_checked(server, tmp_path):
    server.modes['/a.pkl'] = 'good'
    url = server.base + '/a.pkl'
    good = hashlib.sha256(BODY).hexdigest()
    with pytest.raises(DownloadError, match='sha256 mismatch'):
        open_url(url, cache_dir=tmp_path, sha256='0' * 64, num_attempts=3, retry_delay=0, verbose=False)
    assert server.requests == ['/a.pkl']  # a hash mismatch is not retried
    assert os.listdir(tmp_path) == []
    path = open_url(url, cache_dir=tmp_path, sha256=good.upper(), verbose=False, return_filename=True)
    assert util.file_sha256(path) == good
    # A cached file that does not match the expected hash is fetched again.
    with open(path, 'wb') as f:
        f.write(b'tampered')
    open_url(url, cache_dir=tmp_path, sha256=good, verbose=False, return_filename=True)
    assert util.file_sha256(path) == good
    assert len(server.requests) == 3


def test_local_paths_and_file_urls(tmp_path):
    target = tmp_path / 'x y.pkl'
    target.write_bytes(b'abc')
    assert open_url(str(target), return_filename=True) == str(target)
    assert open_url(target.as_uri(), return_filename=True) == str(target)
    with open_url(target.as_uri()) as f:
        assert f.read() == b'abc'
    with pytest.raises(DownloadError, match='sha256 mismatch'):
        open_url(str(target), sha256='0' * 64)
    with pytest.raises(FileNotFoundError, match='missing.pkl'):
        open_url(str(tmp_path / 'missing.pkl'))
    with pytest.raises(ValueError, match='unsupported URL scheme'):
        open_url('ftp://example.com/x.pkl')


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path / 'c'))
    assert make_cache_dir_path('downloads', 'x') == str(tmp_path / 'c' / 'downloads' / 'x')
    monkeypatch.delenv('FSGAN_CACHE_DIR')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert make_cache_dir_path() == str(tmp_path / 'home' / '.cache' / 'fsgan')


def test_default_cache_dir_used(server, monkeypatch, tmp_path):
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path))
    server.modes['/d.pkl'] = 'good'
    path = open_url(server.base + '/d.pkl', verbose=False, return_filename=True)
    assert os.path.dirname(path) == str(tmp_path / 'downloads')


def test_cache_file_name_sanitized():
    name = util.cache_file_name('https://example.com/a/b%20c?.pkl?x=1')
    assert name.startswith(hashlib.md5(b'https://example.com/a/b%20c?.pkl?x=1').hexdigest() + '_')
    assert '/' not in name and '?' not in name
    assert util.cache_file_name('https://example.com/').endswith('_download')
