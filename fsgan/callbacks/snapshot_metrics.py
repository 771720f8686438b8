"""Metrics of every snapshot (--metrics NAME[,NAME]), as stylegan2-ada-pytorch's metric-<name>.jsonl.

At each snapshot, SAMPLES images of G_ema (latents from the grid seed, no truncation, constant noise; class i %
c_dim for conditional networks) are measured with the metrics registry (fsgan.evaluate.metric_registry: the
built-in metrics and every benchmark's) against the run's targets (target_shots.npy) as the shots. Each metric
appends one JSON record to run_dir/metric-<name>.jsonl: {kimg, snapshot, metric, value, values, options}. Only
metrics that need nothing beyond generated images and the shots can run here (e.g. sharpness, memorization, fid
against the shots, emoji_style, emoji_fd).
"""
import json
import os
import tempfile

import numpy as np
import torch

from dnnlib.fileio import append_line
from fsgan import export
from fsgan.options import SetupError
from torch_utils import distributed
from torch_utils.image_grid import save_png, to_uint8
from torch_utils.misc import one_hot

from .registry import Callback, CallbackSpec, register

SAMPLES = 64  # generated images per snapshot


def metric_names(value):
    """--metrics 'NAME[,NAME]' (or a list) -> [NAME, ...] of registered metrics that the shots suffice for;
    SetupError names the metric and says what to do."""
    from fsgan.evaluate import metric_registry
    if not value:
        return []
    names = list(value) if isinstance(value, (list, tuple)) else [n.strip() for n in value.split(',') if n.strip()]
    registry = metric_registry()
    for name in names:
        if name not in registry:
            raise SetupError(f'--metrics {name}: choose from {", ".join(sorted(registry))}')
        missing = [n for n in registry[name].needs if 'shots' not in n.split('|')]
        if missing:
            raise SetupError(f'--metrics {name} needs {", ".join(missing)}, which a training run does not have; '
                             f'compute it with scripts/calc_metrics.py on the snapshots')
    return names


def write_pngs(images, folder):
    """uint8 [N, H, W, C] -> folder/000000.png, ... (the folder is created)."""
    os.makedirs(folder)
    for i, image in enumerate(images):
        save_png(image, os.path.join(folder, f'{i:06d}.png'))
    return folder


@torch.no_grad()
def generate_samples(G, opts, n):
    """n images of G as uint8 [n, H, W, C]: latents from opts.grid_seed, psi 1, constant noise."""
    device = next(G.parameters()).device
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(opts.grid_seed)).to(device)
    c = one_hot(torch.arange(n) % max(G.c_dim, 1), G.c_dim, device)
    return np.concatenate([to_uint8(G(zz, cc, noise_mode='const')) for zz, cc in zip(z.split(16), c.split(16))])


class SnapshotMetrics(Callback):
    every = 'snapshot'

    def __init__(self, names):
        self.names = list(names)

    def __call__(self, state, opts, run_dir):
        from metrics.images import ImageSet
        from fsgan.evaluate import metric_registry
        from metrics.registry import MetricContext
        if distributed.rank() != 0:
            return
        tag = export.artefact_tag(state.cur_nimg)
        shots = np.load(os.path.join(run_dir, 'target_shots.npy')).transpose(0, 2, 3, 1)  # [N, H, W, C]
        device = next(state.G_ema.parameters()).device
        with tempfile.TemporaryDirectory() as tmp:
            ctx = MetricContext(gen=ImageSet(write_pngs(generate_samples(state.G_ema, opts, SAMPLES),
                                                        os.path.join(tmp, 'gen'))),
                                shots=ImageSet(write_pngs(shots, os.path.join(tmp, 'shots'))),
                                device=str(device), seed=opts.seed, fig_dir=run_dir, tag=f'snapshot{tag}')
            for name in self.names:
                result = metric_registry()[name].fn(ctx)
                record = dict(kimg=state.cur_nimg / 1000, snapshot=f'network-snapshot-{tag}.pkl', metric=name,
                              value=result['value'], values=result['values'], options=result.get('options', {}))
                append_line(os.path.join(run_dir, f'metric-{name}.jsonl'), json.dumps(record))


def build(opts, state):
    """The callback where the run names metrics (--metrics), else None."""
    return SnapshotMetrics(opts['metrics']) if opts.get('metrics') else None


register(CallbackSpec(name='snapshot_metrics', build=build, description='--metrics: metric-<name>.jsonl at every '
                      'snapshot'))
