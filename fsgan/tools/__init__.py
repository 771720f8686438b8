"""Researcher tools behind scripts/interpolate.py, scripts/svd_explore.py, scripts/compare.py and the other tools.

interp: latent interpolation (slerp in z, lerp in w), frame rendering and mp4/gif writing.
interpolation: the interpolate tool (options -> checked setup -> video files).
svd_explore: the svd_explore tool (singular-value scaling of one generator layer, the figure).
figure: labelled image grids for the comparison and SVD figures.
errors: OptionError / ToolError, the user-facing errors the library raises.
checks: output-path and --device checks shared by the library and the scripts.
cli: what every command-line tool shares (-h, one-line errors, --device, output paths, --overwrite).
"""
