"""Researcher tools shared by scripts/interpolate.py, scripts/svd_explore.py and scripts/compare.py.

interp: latent interpolation (slerp in z, lerp in w), frame rendering and mp4/gif writing.
figure: labelled image grids for the comparison and SVD figures.
cli: what every command-line tool shares (-h, one-line option errors, --device, output paths, --overwrite).
"""
