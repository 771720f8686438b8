"""Labelled image grids: rows of equally sized images, an optional label column and header row.

Layout of `labeled_grid` (all in pixels): a header band of HEADER rows on top when column labels are
given, a label column on the left when row labels are given, then cells of `cell` x `cell` separated
and surrounded by PAD. So the height is HEADER * (col_labels given) + rows * (cell + PAD) + PAD.
"""
import numpy as np
import PIL.Image
import PIL.ImageDraw

PAD = 2
HEADER = 14
BACKGROUND = (255, 255, 255)


def default_cell(resolution):
    """Cell size for images of `resolution`: integer upscale to >= 128 for small ones, <= 256 for large ones."""
    if resolution < 128:
        return resolution * -(-128 // resolution)
    return min(resolution, 256)


def to_rgb_tile(img, cell):
    """uint8 [H, W, C] (C = 1 or 3) -> PIL RGB image of cell x cell (nearest for integer upscales, else Lanczos)."""
    arr = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    tile = PIL.Image.fromarray(np.ascontiguousarray(arr), 'RGB')
    if tile.size == (cell, cell):
        return tile
    exact = cell % img.shape[0] == 0 and cell % img.shape[1] == 0
    return tile.resize((cell, cell), PIL.Image.NEAREST if exact else PIL.Image.LANCZOS)


def labeled_grid(rows, row_labels=None, col_labels=None, cell=None):
    """rows: list of lists of uint8 [H, W, C] images -> uint8 RGB figure [height, width, 3].

    Empty slots (shorter rows) stay white. cell defaults to default_cell(H of the first image).
    """
    first = next(img for row in rows for img in row)
    cell = cell or default_cell(first.shape[0])
    n_cols = max(len(r) for r in rows)
    probe = PIL.ImageDraw.Draw(PIL.Image.new('RGB', (1, 1)))
    left = 0
    if row_labels:
        left = int(max(probe.textlength(str(t)) for t in row_labels)) + 2 * PAD
    top = HEADER if col_labels else 0
    width = left + n_cols * (cell + PAD) + PAD
    height = top + len(rows) * (cell + PAD) + PAD
    canvas = PIL.Image.new('RGB', (width, height), BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    for k, text in enumerate(col_labels or []):
        draw.text((left + PAD + k * (cell + PAD), 2), str(text), fill=(0, 0, 0))
    for r, row in enumerate(rows):
        y = top + PAD + r * (cell + PAD)
        if row_labels:
            draw.text((PAD, y + cell // 2 - 5), str(row_labels[r]), fill=(0, 0, 0))
        for k, img in enumerate(row):
            canvas.paste(to_rgb_tile(img, cell), (left + PAD + k * (cell + PAD), y))
    return np.asarray(canvas)
