"""Artefacts of an adapted network: baked NVIDIA-format snapshots and compact adapter files.

* Snapshot: a stylegan2-ada-pytorch style pickle {'G', 'D', 'G_ema', 'training_set_kwargs',
  'augment_pipe'} of plain networks: every re-parameterised tensor is baked back into an
  ordinary weight, so stylegan2-ada-pytorch and fsgan.load_network both read it.
* Adapter: only the trained tensors of G, D and G_ema, the method and its options, and the
  sha256 of the source network file. Applying it to that source reproduces the adapted
  networks exactly; applying it to another source is refused.

A run names the snapshot, adapter and sample grid written after N images by artefact_tag(N), kimg with
three decimals: network-snapshot-000020.480.pkl, adapter-000020.480.pt, fakes000020.480.png.
"""
import copy
import os
import pickle
import re

import torch

from dnnlib.fileio import atomic_open
from fsgan.methods import adapt, reparam

ADAPTER_FORMAT = 'fsgan-adapter'
ADAPTER_VERSION = 1


class AdapterError(Exception):
    """An adapter file that cannot be applied (the message says why and what to do)."""


def artefact_tag(nimg):
    """Name tag of the artefacts written after `nimg` images: kimg with three decimals, '000020.480' for 20,480.

    One image is 0.001 kimg, so every snapshot of a run has its own name, and names sort in time order.
    """
    return f'{nimg // 1000:06d}.{nimg % 1000:03d}'


def artefact_kimg(name):
    """kimg in an artefact's name: 'network-snapshot-000020.480.pkl' -> 20.48; runs before tags had decimals
    wrote whole kimg ('network-snapshot-000020.pkl' -> 20.0). None for a name without one."""
    match = re.search(r'(\d+)(?:\.(\d{3}))?\.[A-Za-z]+$', os.path.basename(name))
    if match is None:
        return None
    return int(match.group(1)) + int(match.group(2) or 0) / 1000


def latest_artefact(run_dir, prefix, ext):
    """Path of the newest `prefix*ext` file in run_dir by the kimg in its name (see artefact_kimg), or None."""
    names = [n for n in os.listdir(run_dir) if n.startswith(prefix) and n.endswith(ext)]
    if not names:
        return None
    newest = max(names, key=lambda n: (artefact_kimg(n) is not None, artefact_kimg(n) or 0, n))
    return os.path.join(run_dir, newest)


def baked_copy(net):
    """A CPU copy of `net` with every re-parameterisation baked into plain tensors (None stays None): on the CPU,
    as stylegan2-ada-pytorch pickles its networks, so that its plain unpickling reads a snapshot written during
    GPU training on a machine without one."""
    if net is None:
        return None
    return reparam.baked(net).eval().requires_grad_(False).cpu()


def save_snapshot(path, G, D, G_ema, training_set_kwargs=None):
    """Write a baked, stylegan2-ada-pytorch compatible network pickle atomically."""
    data = dict(training_set_kwargs=training_set_kwargs, G=baked_copy(G), D=baked_copy(D),
                G_ema=baked_copy(G_ema), augment_pipe=None)
    with atomic_open(path) as f:
        pickle.dump(data, f, protocol=4)


def trained_state(net):
    """{name: tensor} of the tensors that training changes (requires_grad) in `net`."""
    return {name: p.detach().cpu().clone() for name, p in net.named_parameters() if p.requires_grad}


def tracked_buffers(net):
    """{name: tensor} of the buffers training updates without a gradient: the mapping's running mean of w
    (`mapping.w_avg`, the centre truncation pulls towards), tracked by the methods that adapt the mapping."""
    return {name: b.detach().cpu().clone() for name, b in net.named_buffers() if name.split('.')[-1] == 'w_avg'}


def save_adapter(path, method, method_options, source_sha256, G, D, G_ema, start='G_ema'):
    """Write the trained tensors of an adapted G/D (and G_ema's values of the same tensors) atomically, with G's
    and G_ema's tracked buffers (tracked_buffers), so that truncated samples are reproduced too.

    start: the source generator ('G' or 'G_ema') that G and G_ema started from.
    """
    G_state = trained_state(G)
    ema_params = dict(G_ema.named_parameters())
    payload = dict(format=ADAPTER_FORMAT, version=ADAPTER_VERSION, method=method,
                   method_options=dict(method_options), source_sha256=source_sha256, start=start,
                   G=G_state, D=trained_state(D) if D is not None else {},
                   G_ema={n: ema_params[n].detach().cpu().clone() for n in G_state},
                   G_buffers=tracked_buffers(G), G_ema_buffers=tracked_buffers(G_ema))
    with atomic_open(path) as f:
        torch.save(payload, f)


def load_adapter(path):
    """Read an adapter file safely (tensors and plain data only)."""
    import warnings
    try:
        with warnings.catch_warnings():  # torch warns about a plain pickle before it refuses it
            warnings.simplefilter('ignore')
            payload = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise AdapterError(f'{path}: no such adapter file') from None
    except Exception as e:
        hint = (' (it is a network pickle: give it as --network)' if str(path).endswith('.pkl') else '')
        raise AdapterError(f'{path}: not a readable adapter file ({type(e).__name__}){hint}; '
                           f'pass an adapter-*.pt written by scripts/train.py') from None
    if not isinstance(payload, dict) or payload.get('format') != ADAPTER_FORMAT:
        raise AdapterError(f'{path}: not an fsgan adapter file')
    if payload.get('version') != ADAPTER_VERSION:
        raise AdapterError(f'{path}: adapter version {payload.get("version")} is not supported '
                           f'(this fsgan reads version {ADAPTER_VERSION})')
    return payload


def _load_trained(net, tensors, what, path):
    params = dict(net.named_parameters())
    missing = sorted(set(tensors) - set(params))
    if missing:
        raise AdapterError(f'{path}: {what} has no tensor(s) {", ".join(missing[:5])}; '
                           f'the adapter was made for a different architecture')
    with torch.no_grad():
        for name, value in tensors.items():
            if params[name].shape != value.shape:
                raise AdapterError(f'{path}: {what}.{name} has shape {list(value.shape)}, '
                                   f'the network expects {list(params[name].shape)}')
            params[name].copy_(value)


def _load_buffers(net, tensors, what, path):
    """Copy an adapter's buffers into `net` (AdapterError naming a buffer it lacks or of another shape)."""
    buffers = dict(net.named_buffers())
    for name, value in tensors.items():
        if name not in buffers or buffers[name].shape != value.shape:
            raise AdapterError(f'{path}: {what}.{name} does not fit the network; the adapter was made for a '
                               f'different architecture')
        buffers[name].copy_(value)


def starting_generator(network, start='G_ema'):
    """The generator adaptation starts from: the source's `start` ('G' or 'G_ema') when present, else the other."""
    other = dict(G='G_ema', G_ema='G')[start]
    return network[start] if network.get(start) is not None else network[other]


def apply_adapter(network, path):
    """Apply an adapter file to a loaded source network dict (from fsgan.load_network), in place.

    G and G_ema both start from the source generator the run started from (the adapter's `start`; files
    without one started from G_ema), as in training; D from D.
    Returns the same dict with G, D and G_ema adapted. Refuses a source with another sha256.
    """
    payload = load_adapter(path)
    if payload['source_sha256'] != network.get('sha256'):
        raise AdapterError(f'{path}: made for source network sha256 {payload["source_sha256"][:12]}..., '
                           f'but the given network has {str(network.get("sha256"))[:12]}...; '
                           f'pass the network the adapter was trained from')
    opts = payload['method_options']
    start = starting_generator(network, payload.get('start', 'G_ema'))
    G, G_ema, D = copy.deepcopy(start), copy.deepcopy(start), network.get('D')
    adapt(G, D, method=payload['method'], **opts)
    adapt(G_ema, None, method=payload['method'], **opts)
    _load_trained(G, payload['G'], 'G', path)
    _load_trained(G_ema, payload['G_ema'], 'G_ema', path)
    for net, key in ((G, 'G_buffers'), (G_ema, 'G_ema_buffers')):  # absent from adapters written before them
        _load_buffers(net, payload.get(key, {}), key, path)
    if D is not None:
        _load_trained(D, payload['D'], 'D', path)
        D.requires_grad_(False)
    network.update(G=G.requires_grad_(False), G_ema=G_ema.requires_grad_(False), D=D)
    return network
