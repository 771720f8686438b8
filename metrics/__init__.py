"""Evaluation metrics for few-shot adapted generators.

Modules: inception (TF-Inception features), frechet (FID, KID), sharpness, face_quality (FQI),
memorization, lpips, diversity (intra-cluster LPIPS / Inception), images (image folders and zips),
generate (network -> PNG folder), registry (name -> metric function) and builtin (the registered metrics).
Command line: scripts/calc_metrics.py.
"""
