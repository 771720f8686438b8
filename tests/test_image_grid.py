"""torch_utils.image_grid: uint8 conversion, grid layout, seeded z, PNG round trip."""
import numpy as np
import PIL.Image
import pytest
import torch

from torch_utils.image_grid import save_png, seed_z, tile, to_uint8


def _cells(n, h=2, w=3, c=3):
    """uint8 [n, h, w, c]; cell i is filled with i + 1 (so no cell is black)."""
    return np.stack([np.full([h, w, c], i + 1, np.uint8) for i in range(n)])


def test_to_uint8_levels_and_layout():
    img = torch.tensor([-1.0, 1.0, 0.0, -2.0, 2.0]).reshape(1, 1, 1, 5).expand(2, 3, 1, 5)  # [N, C, H, W]
    out = to_uint8(img)
    assert out.dtype == np.uint8 and out.shape == (2, 1, 5, 3)
    assert out[0, 0, :, 0].tolist() == [0, 255, 128, 0, 255]


def test_tile_layout_and_black_empty_cells():
    grid = tile(_cells(5), rows=2, cols=3)                    # cells 2 x 3 pixels
    assert grid.shape == (2 * 2, 3 * 3, 3) and grid.dtype == np.uint8
    for i in range(6):
        r, k = divmod(i, 3)
        assert (grid[r * 2:(r + 1) * 2, k * 3:(k + 1) * 3] == (i + 1 if i < 5 else 0)).all()


def test_tile_default_shape():
    assert tile(_cells(5)).shape == (2 * 2, 3 * 3, 3)      # 3 wide (ceil sqrt 5), 2 rows
    assert tile(_cells(5), cols=2).shape == (3 * 2, 2 * 3, 3)
    assert tile(_cells(5), rows=1).shape == (2, 5 * 3, 3)
    with pytest.raises(ValueError):
        tile(_cells(5), rows=2, cols=2)


def test_seed_z_matches_numpy():
    z = seed_z([0, 7], 4)
    assert z.dtype == torch.float32 and z.shape == (2, 4)
    assert np.array_equal(z[1].numpy(), np.random.RandomState(7).randn(4).astype(np.float32))


@pytest.mark.parametrize('c', [1, 3])
def test_save_png_round_trip(tmp_path, c):
    arr = np.random.RandomState(c).randint(0, 256, [4, 5, c]).astype(np.uint8)
    path = tmp_path / 'sub' / 'a.png'
    save_png(arr, path)
    back = np.asarray(PIL.Image.open(path))
    assert np.array_equal(back.reshape(4, 5, c), arr)
