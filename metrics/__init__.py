"""Evaluation metrics for few-shot adapted generators.

Modules: inception (TF-Inception features), frechet (FID, KID), sharpness, face_quality (FQI),
memorization, lpips, diversity (intra-cluster LPIPS / Inception), images (image folders and zips),
registry (name -> metric function and the table columns it reports) and builtin (the registered metrics).
Benchmarks add metrics of their own (fsgan.benchmarks); fsgan.evaluate generates a network's samples and runs
the metrics. Command line: scripts/calc_metrics.py.
"""
