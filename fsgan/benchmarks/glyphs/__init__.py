"""Glyph benchmark: 32x32 grayscale glyphs, a Latin source adapted to Kannada (near) and Devanagari (far)."""
