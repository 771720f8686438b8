"""Diversity as CDC-style intra-cluster distance (Ojha et al. 2021, "Few-shot image generation via
cross-domain correspondence").

Every generated image joins the cluster of its nearest training shot. Within every cluster the first
`max_per_cluster` (50) members, in generation order, are kept, and their mean pairwise distance
(over all pairs i < j) is taken. The score is the mean over clusters with at least 2 kept members.
(CDC's own evaluation keeps 50 members drawn at random; the first 50 of independent samples are as random.)

* `intra_lpips`: distance = LPIPS (metrics.lpips), both for the assignment and within clusters, over the first
  CDC_NUM_GEN (1,000) generated images, as CDC's protocol; images are resized to res x res (default 256; area
  averaging when shrinking, bilinear when enlarging).
* `intra_cluster_from_features` with Inception pool features: the offline score `intra_inception`,
  distance = Euclidean distance between 2048-d Inception features.
"""

import numpy as np
import torch
import torch.nn.functional as F

from metrics.images import to_float_nchw
from metrics.lpips import squared_distances
from metrics.memorization import pairwise_distances

CDC_NUM_GEN = 1000  # generated images CDC's protocol clusters


def assign_clusters(nearest, k, max_per_cluster=50):
    """nearest [N] (index of each generated image's nearest shot), k shots -> (members: list of k index
    lists, the first <= max_per_cluster in order; sizes: list of k full cluster sizes)."""
    nearest = np.asarray(nearest)
    members = [list(np.flatnonzero(nearest == c)[:max_per_cluster]) for c in range(k)]
    sizes = [int(np.count_nonzero(nearest == c)) for c in range(k)]
    return members, sizes


def mean_upper(d):
    """Mean of the strictly upper triangle of a square matrix d [n, n], n >= 2."""
    iu = np.triu_indices(len(d), k=1)
    return float(np.mean(np.asarray(d)[iu]))


def _summary(per_cluster, sizes):
    valid = [v for v in per_cluster if v is not None]
    value = float(np.mean(valid)) if valid else float('nan')
    return dict(value=value, per_cluster=per_cluster, cluster_sizes=sizes, clusters_used=len(valid))


def intra_cluster_from_features(gen, shots, max_per_cluster=50):
    """Intra-cluster mean pairwise Euclidean distance for features gen [N, D], shots [K, D] -> dict(value,
    per_cluster (None for clusters with < 2 kept members), cluster_sizes, clusters_used)."""
    members, sizes = assign_clusters(pairwise_distances(gen, shots).argmin(axis=1), len(shots), max_per_cluster)
    gen = np.asarray(gen)
    per_cluster = [mean_upper(pairwise_distances(gen[m], gen[m])) if len(m) >= 2 else None for m in members]
    return _summary(per_cluster, sizes)


def lpips_input(images, res=256):
    """List of [H, W, 3] uint8 arrays -> float32 [N, 3, res, res] in [-1, 1] (res None: keep the size)."""
    out = []
    for im in images:
        x = to_float_nchw([im]) / 127.5 - 1
        if res is not None and x.shape[2:] != (res, res):
            shrink = x.shape[2] >= res and x.shape[3] >= res
            x = F.interpolate(x, size=(res, res), mode='area' if shrink else 'bilinear',
                              **({} if shrink else dict(align_corners=False)))
        out.append(x)
    return torch.cat(out)


def _embed(lpips, image_set, indices, device, batch_size, res):
    out = []
    for s in range(0, len(indices), batch_size):
        imgs = [image_set.read(int(i)) for i in indices[s:s + batch_size]]
        out.append(lpips.embed(lpips_input(imgs, res).to(device)).cpu())
    return torch.cat(out)


def intra_lpips(lpips, gen_set, shot_set, device='cpu', batch_size=8, res=256, max_per_cluster=50,
                max_gen=CDC_NUM_GEN):
    """CDC intra-cluster LPIPS of the first `max_gen` images of ImageSet `gen_set` w.r.t. ImageSet `shot_set`;
    returns the dict of intra_cluster_from_features plus num_gen (images clustered). Images are read twice
    (assignment pass, then the kept members)."""
    num_gen = min(len(gen_set), max_gen)
    shot_emb = _embed(lpips, shot_set, list(range(len(shot_set))), device, batch_size, res)
    nearest = []
    for s in range(0, num_gen, batch_size):
        emb = _embed(lpips, gen_set, list(range(s, min(s + batch_size, num_gen))), device, batch_size, res)
        nearest.append(squared_distances(emb, shot_emb).argmin(dim=1).numpy())
    members, sizes = assign_clusters(np.concatenate(nearest), len(shot_set), max_per_cluster)
    per_cluster = []
    for m in members:
        if len(m) < 2:
            per_cluster.append(None)
            continue
        emb = _embed(lpips, gen_set, m, device, batch_size, res)
        per_cluster.append(mean_upper(squared_distances(emb, emb).numpy()))
    return dict(_summary(per_cluster, sizes), num_gen=num_gen)
