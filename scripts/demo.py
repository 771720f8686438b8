"""README command one: a few-shot FSGAN adaptation on the CPU, then samples, a video and metrics.

Until the pretrained glyph source network ships, the source is the small bundled
stylegan2-ada-pytorch network tests/fixtures/p1.pkl (32x32 RGB) and the targets are the
10 bundled Kannada glyph shots (data/glyphs/kannada_shots10.zip). Everything lands in a new
numbered folder under --outdir.
"""
import json
import os
import sys

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_SOURCE = os.path.join(ROOT, 'tests', 'fixtures', 'p1.pkl')
DEFAULT_TARGET = os.path.join(ROOT, 'data', 'glyphs', 'kannada_shots10.zip')


@click.command()
@click.option('--outdir', default=os.path.join(ROOT, 'runs', 'demo'), show_default=True, help='Parent folder.')
@click.option('--kimg', type=click.FloatRange(min=0, min_open=True), default=0.4, show_default=True,
              help='Adaptation length in thousands of images.')
@click.option('--source', default=DEFAULT_SOURCE, show_default=True, help='Source network.')
@click.option('--target', default=DEFAULT_TARGET, show_default=True, help='Target shots (folder or zip).')
def main(outdir, kimg, source, target):
    """Adapt --source to --target with FSGAN and write samples, a video and metrics."""
    import numpy as np
    from fsgan.tools.interp import interpolation_video
    from scripts.generate import generate_images, load_generator, make_grid, save_png
    from scripts.train import run_training, setup_training_config
    from dnnlib.fileio import atomic_write_json

    c = setup_training_config(target, outdir=outdir, resume=source, method='fsgan', shots=10, kimg=kimg,
                              batch=8, seed=0, snap=0, kimg_per_tick=kimg / 4, device='cpu')
    run_dir = run_training(c)
    snapshots = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-'))
    network = os.path.join(run_dir, snapshots[-1])
    G, sha = load_generator(network)

    images = generate_images(G, list(range(64)), trunc=0.8)
    save_png(make_grid(images, cols=8), os.path.join(run_dir, 'samples_trunc0.8.png'))
    num_frames, _size = interpolation_video(G, [[1, 5, 9, 13]], os.path.join(run_dir, 'interpolation.mp4'),
                                            frames_per_transition=16, space='w', trunc=0.8, fps=24, factor=4)

    from metrics.sharpness import sharpness
    rgb = np.repeat(images, 3, axis=3) if images.shape[3] == 1 else images
    sharp = np.array([sharpness(img) for img in rgb])
    shots = np.load(os.path.join(run_dir, 'target_shots.npy'))                    # [N, C, R, R]
    gen = images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.float64)
    ref = shots.reshape(len(shots), -1).astype(np.float64)
    if gen.shape[1] != ref.shape[1]:
        ref = np.repeat(shots, gen.shape[1] // ref.shape[1], axis=1).reshape(len(shots), -1).astype(np.float64)
    nearest = np.sqrt(((gen[:, None] - ref[None]) ** 2).mean(-1)).min(1)
    pair = np.sqrt(((ref[:, None] - ref[None]) ** 2).mean(-1))
    shot_gap = pair[~np.eye(len(ref), dtype=bool)].min()
    report = dict(network=network, network_sha256=sha, num_samples=len(images), trunc=0.8,
                  sharpness_mean=float(sharp.mean()), sharpness_std=float(sharp.std()),
                  pixel_nn_distance_mean=float(nearest.mean()),
                  memorised_fraction=float((nearest < shot_gap).mean()),
                  note='memorised_fraction: share of samples closer (pixel RMS) to a shot than any two shots are')
    atomic_write_json(os.path.join(run_dir, 'metrics.json'), report)
    print(json.dumps(report, indent=2))
    print(f'\nDone. Run folder: {run_dir}')
    print(f'  samples:  {os.path.join(run_dir, "samples_trunc0.8.png")}')
    print(f'  video:    {os.path.join(run_dir, "interpolation.mp4")} ({num_frames} frames)')
    print(f'  metrics:  {os.path.join(run_dir, "metrics.json")}')


if __name__ == '__main__':
    main()
