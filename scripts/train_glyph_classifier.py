#!/usr/bin/env python3
"""Train the glyph classifier (script + character, plus an auxiliary font-family head) on the CPU.

Training data: ``source.zip`` and ``<target>_train.zip`` from ``--train-dir``
(the output folder of ``scripts/make_glyph_data.py``).  After training, every
``*_test.zip``, ``*_val.zip`` and ``*_shots*.zip`` in ``--eval-dir`` is
scored; the accuracies are printed and stored in the JSON config next to the
weights (``--out``: ``<name>.pt`` + ``<name>.json``, written atomically).
"""

import glob
import json
import os
import sys
import time
import zipfile

import click
import torch
import torch.nn.functional as F

from fsgan.tools.cli import command
from fsgan.benchmarks.glyphs.classifier import (GlyphClassifier, load_dataset_zip, save_glyph_classifier,
                                      sha256_file, write_manifest)

TRAIN_ZIPS = ('source.zip', 'near_train.zip', 'kannada_train.zip', 'devanagari_train.zip')


def _read_meta(zip_path):
    """A dataset zip's meta.json -> (global label map [{label, text, script}], font family per image)."""
    with zipfile.ZipFile(zip_path) as zf:
        meta = json.loads(zf.read('meta.json'))
    col = meta['items_columns'].index('font_id')
    return meta['label_map'], [meta['fonts'][item[col]]['family'] for item in meta['items']]


def evaluate(model, paths):
    """Char / script accuracy per zip -> {zip name: {n, char_acc, script_acc}}."""
    char_script = model.char_script()
    out = {}
    for path in paths:
        images, labels = load_dataset_zip(path)
        script_pred, char_pred = model.predict(images)
        out[os.path.basename(path)] = {
            'n': len(labels),
            'char_acc': round(float((char_pred == labels).float().mean()), 4),
            'script_acc': round(float((script_pred == char_script[labels]).float().mean()), 4),
        }
    return out


@command()
@click.option('--train-dir', required=True, type=click.Path(exists=True, file_okay=False), help='Folder with source.zip and <target>_train.zip.')
@click.option('--eval-dir', default='data/glyphs', show_default=True, type=click.Path(exists=True, file_okay=False), help='Folder whose test/val/shots zips are scored.')
@click.option('--out', default='data/glyphs/glyph_classifier.pt', show_default=True, type=click.Path(dir_okay=False), help='Weights path (.pt); config goes to the same name with .json.')
@click.option('--epochs', type=click.IntRange(min=1), default=3, show_default=True)
@click.option('--batch-size', type=click.IntRange(min=1), default=128, show_default=True)
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True, help='Peak AdamW learning rate (one-cycle schedule).')
@click.option('--max-source', type=click.IntRange(min=1), default=16000, show_default=True, help='Use at most this many source.zip images.')
@click.option('--seed', type=int, default=0, show_default=True)
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True, help='torch CPU threads (1 is fastest on a busy 2-core machine).')
def main(train_dir, eval_dir, out, epochs, batch_size, lr, max_source, seed, threads):
    """Train the glyph CNN on rendered glyphs and score it on the held-out splits."""
    if not out.endswith('.pt'):
        raise click.BadParameter('must end with .pt', param_hint='--out')
    paths = [os.path.join(train_dir, n) for n in TRAIN_ZIPS]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise click.BadParameter(f'missing {", ".join(missing)} (run scripts/make_glyph_data.py)', param_hint='--train-dir')
    eval_paths = sorted(p for pat in ('*_test.zip', '*_val.zip', '*_shots*.zip')
                        for p in glob.glob(os.path.join(eval_dir, pat)))
    torch.manual_seed(seed)
    torch.set_num_threads(threads)

    label_map = _read_meta(paths[0])[0]
    scripts = list(dict.fromkeys(c['script'] for c in label_map))
    images, labels, family_names = [], [], []
    for path in paths:
        lmap, fams = _read_meta(path)
        if lmap != label_map:
            raise click.ClickException(f'{path}: label map differs from {paths[0]}')
        x, y = load_dataset_zip(path, limit=max_source if path == paths[0] else None)
        images.append(x)
        labels.append(y)
        family_names += fams[:len(y)]
        click.echo(f'{os.path.basename(path)}: {len(y)} images')
    images, labels = torch.cat(images), torch.cat(labels)
    resolution, channels = images.shape[2], images.shape[1]
    script_of = torch.tensor([scripts.index(c['script']) for c in label_map])
    families = sorted(set(family_names))
    family = torch.tensor([families.index(f) for f in family_names])

    config = {'resolution': int(resolution), 'channels': int(channels), 'widths': [16, 32, 64], 'feature_dim': 128,
              'dropout': 0.3, 'scripts': scripts, 'classes': label_map, 'families': families,
              'input': 'uint8 [0,255] or float [-1,1], white glyph on black'}
    model = GlyphClassifier(config)
    net = model.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(labels) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(labels), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            x = images[idx].float() / 127.5 - 1
            y = labels[idx]
            _, s_logits, c_logits, f_logits = net(x)
            loss = (F.cross_entropy(c_logits, y, label_smoothing=0.05) + F.cross_entropy(s_logits, script_of[y])
                    + 0.5 * F.cross_entropy(f_logits, family[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(y)
            correct += int((c_logits.argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
        click.echo(f'epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f}, train char acc {correct / total:.4f}, '
                   f'{time.time() - t0:.0f}s')
    model.eval()

    results = evaluate(model, eval_paths)
    for name, r in results.items():
        click.echo(f'{name:28s} n={r["n"]:5d} char_acc={r["char_acc"]:.4f} script_acc={r["script_acc"]:.4f}')
    model.config = dict(config, train={
        'command': 'scripts/train_glyph_classifier.py ' + ' '.join(sys.argv[1:]),
        'data': {os.path.basename(p): sha256_file(p) for p in paths}, 'num_images': len(labels),
        'epochs': epochs, 'batch_size': batch_size, 'lr': lr, 'seed': seed, 'max_source': max_source,
        'seconds': round(time.time() - t0), 'torch': torch.__version__}, eval=results)
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    save_glyph_classifier(model, out)
    click.echo(f'saved {out} and {os.path.splitext(out)[0]}.json')
    if os.path.isfile(os.path.join(os.path.dirname(out) or '.', 'MANIFEST.json')):
        write_manifest(os.path.dirname(out) or '.')
        click.echo('refreshed MANIFEST.json')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
