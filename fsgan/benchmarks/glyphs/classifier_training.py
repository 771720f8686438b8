"""Training the glyph classifier (script + character, plus an auxiliary font-family head) on the CPU.

Training data: source.zip and <target>_train.zip from a folder made by scripts/make_glyph_data.py
(paths.CLASSIFIER_TRAIN_NAMES). After training, every *_test.zip, *_val.zip and *_shots*.zip of an
evaluation folder is scored; the accuracies are stored in the JSON config next to the weights
(<name>.pt + <name>.json, written atomically by fsgan.benchmarks.glyphs.classifier.save_glyph_classifier).
"""
import glob
import json
import os
import time
import zipfile

import torch
import torch.nn.functional as F

from fsgan.benchmarks.glyphs import paths
from fsgan.tools.errors import OptionError, ToolError

EVAL_PATTERNS = ('*_test.zip', '*_val.zip', '*_shots*.zip')


def _read_meta(zip_path):
    """A dataset zip's meta.json -> (global label map [{label, text, script}], font family per image)."""
    with zipfile.ZipFile(zip_path) as zf:
        meta = json.loads(zf.read('meta.json'))
    col = meta['items_columns'].index('font_id')
    return meta['label_map'], [meta['fonts'][item[col]]['family'] for item in meta['items']]


def evaluate(model, zip_paths):
    """Char / script accuracy per zip -> {zip name: {n, char_acc, script_acc}}."""
    from fsgan.benchmarks.glyphs.classifier import load_dataset_zip
    char_script = model.char_script()
    out = {}
    for path in zip_paths:
        images, labels = load_dataset_zip(path)
        script_pred, char_pred = model.predict(images)
        out[os.path.basename(path)] = {
            'n': len(labels),
            'char_acc': round(float((char_pred == labels).float().mean()), 4),
            'script_acc': round(float((script_pred == char_script[labels]).float().mean()), 4),
        }
    return out


def load_training_set(zip_paths, max_source, log=print):
    """The training zips (the first one, source.zip, cut to max_source images) concatenated.

    Returns (images uint8 [N, C, R, R], labels int64 [N], label map, font family name per image).
    Raises ToolError when the zips' label maps differ.
    """
    from fsgan.benchmarks.glyphs.classifier import load_dataset_zip
    label_map = _read_meta(zip_paths[0])[0]
    images, labels, family_names = [], [], []
    for path in zip_paths:
        lmap, fams = _read_meta(path)
        if lmap != label_map:
            raise ToolError(f'{path}: label map differs from {zip_paths[0]}')
        x, y = load_dataset_zip(path, limit=max_source if path == zip_paths[0] else None)
        images.append(x)
        labels.append(y)
        family_names += fams[:len(y)]
        log(f'{os.path.basename(path)}: {len(y)} images')
    return torch.cat(images), torch.cat(labels), label_map, family_names


def _epoch(net, opt, sched, data, batch_size, gen):
    """One pass over data = (images, labels, script of each label, family index per image) in random order.

    Returns (mean loss, train char accuracy).
    """
    images, labels, script_of, family = data
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
    return loss_sum / total, correct / total


def fit(model, data, epochs, batch_size, lr, seed, log=print):
    """Train model.net with AdamW and a one-cycle schedule (peak lr); leaves the model in eval mode."""
    net = model.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(data[1]) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for epoch in range(epochs):
        loss, acc = _epoch(net, opt, sched, data, batch_size, gen)
        log(f'epoch {epoch + 1}/{epochs}: loss {loss:.4f}, train char acc {acc:.4f}, {time.time() - t0:.0f}s')
    model.eval()


def _check_inputs(train_dir, out):
    """The training zips in train_dir; OptionError for an --out not ending in .pt or a missing zip."""
    if not out.endswith('.pt'):
        raise OptionError('must end with .pt', '--out')
    zip_paths = [os.path.join(train_dir, n) for n in paths.CLASSIFIER_TRAIN_NAMES]
    missing = [p for p in zip_paths if not os.path.isfile(p)]
    if missing:
        raise OptionError(f'missing {", ".join(missing)} (run scripts/make_glyph_data.py)', '--train-dir')
    return zip_paths


def train_glyph_classifier(train_dir, eval_dir, out, epochs=3, batch_size=128, lr=3e-3, max_source=16000, seed=0,
                           threads=1, command='', log=print):
    """Train the glyph CNN on train_dir's zips, score it on eval_dir's test/val/shots zips, save it to out.

    command: the command line recorded in the config. Refreshes MANIFEST.json of out's folder when it has one.
    Returns {zip name: {n, char_acc, script_acc}}.
    """
    from fsgan.benchmarks.glyphs.classifier import GlyphClassifier, save_glyph_classifier, sha256_file, write_manifest
    zip_paths = _check_inputs(train_dir, out)
    eval_paths = sorted(p for pat in EVAL_PATTERNS for p in glob.glob(os.path.join(eval_dir, pat)))
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    images, labels, label_map, family_names = load_training_set(zip_paths, max_source, log)
    scripts = list(dict.fromkeys(c['script'] for c in label_map))
    families = sorted(set(family_names))
    config = {'resolution': int(images.shape[2]), 'channels': int(images.shape[1]), 'widths': [16, 32, 64],
              'feature_dim': 128, 'dropout': 0.3, 'scripts': scripts, 'classes': label_map, 'families': families,
              'input': 'uint8 [0,255] or float [-1,1], white glyph on black'}
    model = GlyphClassifier(config)
    data = (images, labels, torch.tensor([scripts.index(c['script']) for c in label_map]),
            torch.tensor([families.index(f) for f in family_names]))
    t0 = time.time()
    fit(model, data, epochs, batch_size, lr, seed, log)
    results = evaluate(model, eval_paths)
    for name, r in results.items():
        log(f'{name:28s} n={r["n"]:5d} char_acc={r["char_acc"]:.4f} script_acc={r["script_acc"]:.4f}')
    model.config = dict(config, train={
        'command': command, 'data': {os.path.basename(p): sha256_file(p) for p in zip_paths},
        'num_images': len(labels), 'epochs': epochs, 'batch_size': batch_size, 'lr': lr, 'seed': seed,
        'max_source': max_source, 'seconds': round(time.time() - t0), 'torch': torch.__version__}, eval=results)
    folder = os.path.dirname(out) or '.'
    os.makedirs(folder, exist_ok=True)
    save_glyph_classifier(model, out)
    log(f'saved {out} and {os.path.splitext(out)[0]}.json')
    if os.path.isfile(os.path.join(folder, 'MANIFEST.json')):
        write_manifest(folder)
        log('refreshed MANIFEST.json')
    return results
