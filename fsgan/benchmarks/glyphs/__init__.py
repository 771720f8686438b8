"""Glyph benchmark: 32x32 grayscale glyphs, a Latin source adapted to a held-out Latin font (near) and to Kannada
(far; Devanagari is rendered too).

Modules: classifier (the glyph classifier and FGD), metrics (glyph-classifier numbers, registered as metrics),
preset (`compare.py --preset glyphs`), demo (the README demo).
"""

from .paths import DATA_DIR as GLYPHS, ROOT  # noqa: F401  (the shipped benchmark files; paths.py names them all)
