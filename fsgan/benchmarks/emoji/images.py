"""Image conversion for the emoji benchmark: RGBA PNG and SVG -> RESOLUTION x RESOLUTION RGB on a background."""
import io

import numpy as np
import PIL.Image

from .npm import EmojiDataError


def composite(rgba, background):
    """Alpha-composite straight-alpha uint8 [H, W, 4] onto an opaque RGB `background` -> uint8 [H, W, 3].

    out = (rgb * a + background * (255 - a)) / 255, rounded to the nearest integer.
    """
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    bg = np.asarray(background, dtype=np.uint32).reshape(1, 1, 3)
    return ((rgb * alpha + bg * (255 - alpha) + 127) // 255).astype(np.uint8)


def decode_rgba(data, name, resolution):
    """PNG (or any Pillow image) bytes -> uint8 [R, R, 4]; the image must already be R x R."""
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # Pillow raises many types for corrupt data
        raise EmojiDataError(f'{name}: cannot be read as an image ({type(e).__name__}: {e})') from None
    if img.size != (resolution, resolution):
        raise EmojiDataError(f'{name}: is {img.size[0]}x{img.size[1]}, expected {resolution}x{resolution}')
    return np.asarray(img.convert('RGBA'), dtype=np.uint8)


def png_to_rgb(data, name, resolution, background):
    """An R x R PNG (any mode) composited onto `background` -> uint8 [R, R, 3]."""
    return composite(decode_rgba(data, name, resolution), background)


def svg_to_rgb(data, name, resolution, background):
    """Rasterise SVG bytes with resvg to R x R (the viewBox stretched to the square), composite -> uint8 [R, R, 3]."""
    import resvg_py  # imported here: only SVG sources need it

    try:
        png = resvg_py.svg_to_bytes(svg_string=data.decode('utf-8'), width=resolution, height=resolution,
                                    skip_system_fonts=True)
    except (ValueError, UnicodeDecodeError) as e:
        raise EmojiDataError(f'{name}: cannot be rasterised as SVG ({e})') from None
    return png_to_rgb(bytes(png), name, resolution, background)


def encode_png(rgb):
    """uint8 [H, W, 3] -> PNG bytes (zlib level 9; deterministic for a given Pillow/zlib)."""
    buf = io.BytesIO()
    PIL.Image.fromarray(rgb, 'RGB').save(buf, format='PNG', compress_level=9)
    return buf.getvalue()


def grid_image(images, cols=16, rows=8, gap_value=96):
    """Up to cols*rows images uint8 [N, R, R, 3] tiled with 1-px grey gaps -> PIL image (None if N = 0)."""
    n = min(len(images), cols * rows)
    if n == 0:
        return None
    rows = (n + cols - 1) // cols
    cols = min(cols, n)
    r = images.shape[1]
    grid = np.full((rows * (r + 1) + 1, cols * (r + 1) + 1, 3), gap_value, np.uint8)
    for i in range(n):
        y, x = divmod(i, cols)
        grid[1 + y * (r + 1):1 + y * (r + 1) + r, 1 + x * (r + 1):1 + x * (r + 1) + r] = images[i]
    return PIL.Image.fromarray(grid, 'RGB')
