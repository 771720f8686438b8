"""LPIPS-VGG weights out of the box: downloaded once by URL into the cache and checked by sha256 (a full digest or a
published prefix), against a local HTTP server on 127.0.0.1 (nothing is fetched from the internet); calc_metrics
--metrics intra_lpips with the default download, a --lpips-weights URL and a --lpips-weights PATH."""
import hashlib
import io
import json
import os
from http.server import BaseHTTPRequestHandler

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from dnnlib.util import DownloadError
from metrics import lpips
from metrics.lpips import VGG16_CONVS, WeightFile, fetch_checked
from tests.local_http import local_server

pytestmark = pytest.mark.usefixtures('one_thread')


class _Handler(BaseHTTPRequestHandler):
    """Serves server.files[path] (bytes); 404 for other paths."""
    timeout = 10

    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """Local server on 127.0.0.1 in a thread (tests.local_http)."""
    with local_server(_Handler, monkeypatch, timeout=120, requests=[], files={}) as srv:
        yield srv


def _saved(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope='module')
def weight_bytes():
    """Stand-ins for the two published files, in their formats: the lpips package's lin layers
    (lin{k}.model.1.weight) and torchvision's VGG16 state dict (features.{i}.*, classifier.*), random values."""
    g = torch.Generator().manual_seed(0)
    lin = {f'lin{k}.model.1.weight': torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate((64, 128, 256, 512, 512))}
    vgg, in_ch = {}, 3
    for idx, out_ch in VGG16_CONVS:
        vgg[f'features.{idx}.weight'] = (torch.randn(out_ch, in_ch, 3, 3, generator=g) * (2 / (9 * in_ch)) ** 0.5).half()
        vgg[f'features.{idx}.bias'] = torch.zeros(out_ch, dtype=torch.float16)
        in_ch = out_ch
    vgg['classifier.6.weight'] = torch.zeros(10, 4)
    return dict(lin=_saved(lin), vgg=_saved(vgg), combined=_saved(dict(vgg, **lin)))


def _sha(body):
    return hashlib.sha256(body).hexdigest()


def test_fetch_checked_full_digest_and_prefix(server, tmp_path):
    server.files.update({'/lin.pth': b'lin bytes', '/vgg16-xxxx.pth': b'vgg bytes'})
    lin = WeightFile(server.base + '/lin.pth', _sha(b'lin bytes'))
    vgg = WeightFile(server.base + '/vgg16-xxxx.pth', _sha(b'vgg bytes')[:8])
    paths = [fetch_checked(w, tmp_path) for w in (lin, vgg)]
    assert [open(p, 'rb').read() for p in paths] == [b'lin bytes', b'vgg bytes']
    assert [fetch_checked(w, tmp_path) for w in (lin, vgg)] == paths
    assert server.requests == ['/lin.pth', '/vgg16-xxxx.pth']  # once: later calls read the cache

    with open(paths[1], 'wb') as f:  # a damaged cached file: refused and removed, the next call downloads anew
        f.write(b'damaged')
    with pytest.raises(DownloadError, match='does not start with the published'):
        fetch_checked(vgg, tmp_path)
    assert not os.path.exists(paths[1])
    assert open(fetch_checked(vgg, tmp_path), 'rb').read() == b'vgg bytes'
    with open(paths[0], 'wb') as f:  # a full digest: open_url fetches a mismatching cached file again
        f.write(b'damaged')
    assert open(fetch_checked(lin, tmp_path), 'rb').read() == b'lin bytes'

    server.files['/other.pth'] = b'substituted'
    with pytest.raises(DownloadError, match='sha256 mismatch'):
        fetch_checked(WeightFile(server.base + '/other.pth', _sha(b'lin bytes')), tmp_path)
    with pytest.raises(DownloadError, match='does not start with'):
        fetch_checked(WeightFile(server.base + '/other.pth', '397923af'), tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)  # nothing else stored


def test_published_downloads_are_pinned():
    (lin, vgg) = lpips.LPIPS_VGG_DOWNLOADS
    assert lin.url.endswith('/lpips/weights/v0.1/vgg.pth') and len(lin.sha256) == 64
    assert vgg.url.endswith('/vgg16-397923af.pth') and vgg.sha256 == '397923af'  # torchvision names it by its hash


def _images(root, name, n, seed):
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        PIL.Image.fromarray(rng.randint(0, 256, (16, 16, 3)).astype(np.uint8)).save(folder / f'{i}.png')
    return str(folder)


def _calc_metrics(tmp_path, *extra):
    from tests.test_metrics_cli import _load_script
    gen, shots = _images(tmp_path, 'gen', 3, 1), _images(tmp_path, 'shots', 2, 2)
    out = tmp_path / 'm.jsonl'
    res = CliRunner().invoke(_load_script().main, ['--gen-dir', gen, '--shots-dir', shots, '--metrics', 'intra_lpips',
                                                   '--batch', '4', '--out', str(out), *extra])
    return res, (json.loads(out.read_text().splitlines()[-1]) if out.exists() else None)


@pytest.mark.slow
def test_calc_metrics_downloads_the_weights_once_or_takes_a_url_or_path(server, weight_bytes, tmp_path, monkeypatch):
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path / 'cache'))
    server.files.update({'/w/vgg.pth': weight_bytes['lin'], '/m/vgg16-abcd.pth': weight_bytes['vgg'],
                         '/combined.pth': weight_bytes['combined']})
    downloads = (WeightFile(server.base + '/w/vgg.pth', _sha(weight_bytes['lin'])),
                 WeightFile(server.base + '/m/vgg16-abcd.pth', _sha(weight_bytes['vgg'])[:8]))
    monkeypatch.setattr(lpips, 'LPIPS_VGG_DOWNLOADS', downloads)

    res, record = _calc_metrics(tmp_path / 'a')
    assert res.exit_code == 0, res.output
    assert server.requests == ['/w/vgg.pth', '/m/vgg16-abcd.pth']
    assert len(os.listdir(tmp_path / 'cache' / 'downloads')) == 2
    assert record['options']['lpips_weights'] == [w.url for w in downloads] and record['value'] > 0
    assert record['values']['num_gen'] == 3 and sum(record['values']['cluster_sizes']) == 3
    lpips.lpips_vgg()  # the cached files serve every later run
    assert len(server.requests) == 2

    res, by_url = _calc_metrics(tmp_path / 'b', '--lpips-weights', server.base + '/combined.pth')
    assert res.exit_code == 0, res.output
    assert server.requests[2:] == ['/combined.pth'] and by_url['value'] == record['value']
    (tmp_path / 'combined.pth').write_bytes(weight_bytes['combined'])
    res, by_path = _calc_metrics(tmp_path / 'c', '--lpips-weights', str(tmp_path / 'combined.pth'))
    assert res.exit_code == 0, res.output
    assert len(server.requests) == 3 and by_path['value'] == record['value']


def test_calc_metrics_refuses_a_download_with_another_hash(server, weight_bytes, tmp_path, monkeypatch):
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path / 'cache'))
    server.files['/w/vgg.pth'] = weight_bytes['lin'] + b'tampered'
    monkeypatch.setattr(lpips, 'LPIPS_VGG_DOWNLOADS', (WeightFile(server.base + '/w/vgg.pth', _sha(weight_bytes['lin'])),))
    res, _record = _calc_metrics(tmp_path)
    assert res.exit_code != 0 and 'intra_lpips' in res.output and 'sha256 mismatch' in res.output
    assert 'Traceback' not in res.output and not isinstance(res.exception, (TypeError, AttributeError))
    assert os.listdir(tmp_path / 'cache' / 'downloads') == []
