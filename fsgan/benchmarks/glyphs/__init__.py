"""Glyph benchmark: 32x32 grayscale glyphs, a Latin source adapted to Kannada (near) and Devanagari (far).

Modules: classifier (the glyph classifier and FGD), metrics (glyph-classifier numbers, registered as metrics),
preset (`compare.py --preset glyphs`), demo (the README demo).
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GLYPHS = os.path.join(ROOT, 'data', 'glyphs')  # the shipped benchmark files
