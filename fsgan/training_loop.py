"""Few-shot adaptation (or training from scratch) of StyleGAN2: setup, step, maintenance, checkpoints.

The adaptation method only decides which tensors train (fsgan.methods); this loop is the
same for all of them. A run folder holds:
  training_options.json   the resolved options, grouped per component (fsgan.options)
  target_shots.json       the chosen target files, their sha256 and conversion notes
  stats.jsonl             one JSON record per tick (losses, kimg, timing)
  sessions.jsonl          one JSON record per start or resume: where, from which commit, at which kimg
                          (fsgan.provenance)
  metric-{name}.jsonl     with --metrics: one JSON record per snapshot (fsgan/callbacks/snapshot_metrics.py)
  fakes{tag}.png          fixed-seed sample grid at each snapshot; tag = kimg with three decimals,
                          e.g. 000020.480 (fsgan.export.artefact_tag): unique, sorts in time order
  network-snapshot-{tag}.pkl   baked network pickle (stylegan2-ada-pytorch format)
  adapter-{tag}.pt        trained tensors only (+ source sha256)
  checkpoint.pt           everything a resume needs (written atomically at the start, at each snapshot, every
                          --checkpoint-ticks ticks between them and, with --checkpoint-minutes, within ticks)
  events.out.tfevents.*   TensorBoard scalars (step = images seen)
"""
import contextlib
import copy
import glob
import json
import math
import os
import random
import re
import time
import warnings

import numpy as np
import torch

from dnnlib import EasyDict
from dnnlib.fileio import append_line, atomic_open, atomic_write_json, ctrl_c_deferred
from fsgan import export, provenance
from fsgan.callbacks import build_callbacks, callbacks_state, load_callbacks_state, run_callbacks
from fsgan.losses import build_loss_terms, resolve_losses
from fsgan.methods import adapt, get_method
from fsgan.options import write_training_options
from torch_utils import distributed, training_stats
from torch_utils.ops import conv2d_resample
from torch_utils.misc import one_hot
from torch_utils.image_grid import save_png, tile, to_uint8
from torch_utils.tb_events import ScalarWriter
from training import networks
from training.augment import build_augment
from training.loss import StyleGAN2Loss


class TrainingError(Exception):
    """Training cannot go on (NaN/Inf, bad checkpoint); the message names the step and what to do."""


# ----------------------------------------------------------------------------- setup

def build_networks(opts, device):
    """Return (G, D, G_ema, source) before adaptation; source is the loaded network dict or None."""
    if opts.source is not None:
        from fsgan.loading import load_network
        source = load_network(opts.source)
        if (source['G'] is None and source['G_ema'] is None) or source['D'] is None:
            raise TrainingError(f'{opts.source}: needs a generator (G or G_ema) and D to adapt; this file lacks one')
        start = export.starting_generator(source, opts.get('start') or 'G_ema')
        G = copy.deepcopy(start)
        D = copy.deepcopy(source['D'])
        G_ema = copy.deepcopy(start)
    else:
        source = None
        G = networks.Generator(**opts.G_kwargs)
        D = networks.Discriminator(**opts.D_kwargs)
        G_ema = copy.deepcopy(G)
    return G.to(device).train(), D.to(device).train(), G_ema.to(device).eval(), source


def configure_backends(device, allow_tf32=False):
    """On CUDA: cuDNN picks the fastest convolution algorithms (benchmark mode), and TF32 is used for
    float32 matmuls and convolutions only with allow_tf32 (off by default, as in stylegan2-ada-pytorch:
    TF32 keeps 10 mantissa bits). Nothing changes on other devices."""
    if torch.device(device).type != 'cuda':
        return
    torch.backends.cudnn.benchmark = True
    set_tf32(allow_tf32)


def cpu_has_bf16(cpuinfo='/proc/cpuinfo'):
    """True/False when `cpuinfo` lists (or lacks) the CPU instructions that make bfloat16 convolutions fast
    (avx512_bf16, amx_bf16); None where it cannot be read (not Linux)."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as f:
            flags = set(f.read().split())
    except OSError:
        return None
    return bool(flags & {'avx512_bf16', 'amx_bf16'})


def warn_slow_bf16(device, bf16_conv, cpuinfo='/proc/cpuinfo'):
    """Warn (once per run) when --bf16-conv is asked for on a CPU without bfloat16 instructions, where the
    convolutions are emulated and may be slower than float32."""
    if bf16_conv and torch.device(device).type == 'cpu' and cpu_has_bf16(cpuinfo) is False:
        warnings.warn('--bf16-conv: this CPU lacks avx512_bf16 and amx_bf16, so bfloat16 convolutions are emulated '
                      'and may be slower than float32; drop --bf16-conv if the ticks are slower', stacklevel=2)


def set_tf32(allow):
    """TF32 on or off for CUDA float32 matmuls and cuDNN convolutions.

    The allow_tf32 flags, not torch's newer fp32_precision settings: torch refuses to read the flags
    back once the newer settings were used, and other code still reads them."""
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)


def make_optimizer(params, lr, reg_interval):
    """Adam (betas 0, 0.99) with the lazy-regularisation correction of lr and betas."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0 ** ratio, 0.99 ** ratio), eps=1e-8)


def setup_run(opts, device):
    """Build networks, adapt them, and make the loss and optimisers. Returns an EasyDict state."""
    G, D, G_ema, source = build_networks(opts, device)
    G_init_kwargs, D_init_kwargs = G.init_kwargs, D.init_kwargs
    spec = get_method(opts.method)
    trainable = adapt(G, D, method=opts.method, **opts.method_options)
    adapt(G_ema, None, method=opts.method, **opts.method_options)
    G_ema.requires_grad_(False)
    state = training_state(opts, device, G, D, G_ema, trainable, track_w_avg(opts, spec),
                           build_loss_terms(loss_config(opts)))
    state.update(G_init_kwargs=G_init_kwargs, D_init_kwargs=D_init_kwargs, source=source,
                 source_sha256=source['sha256'] if source else None)
    return state


def training_state(opts, device, G, D, G_ema, trainable, update_w_avg, terms=()):
    """Augmentation, loss, optimisers and counters that train `trainable` (tensors of G and D) with the run's
    settings. Returns an EasyDict state for training_step."""
    D_params = {id(p) for p in D.parameters()}
    G_train = [p for p in trainable if id(p) not in D_params]
    D_train = [p for p in trainable if id(p) in D_params]
    D_train += [t for term in terms for t in term.attach(G, D)]  # training-only tensors some terms add to D's side
    augment = build_augment(**opts.get('augment_kwargs', dict(name='none'))).to(device)
    state = EasyDict(augment=augment, G=G, D=D, G_ema=G_ema,
                    loss=StyleGAN2Loss(G, D, style_mixing_prob=opts.style_mixing, r1_gamma=opts.gamma,
                                       pl_weight=opts.pl_weight, update_w_avg=update_w_avg, terms=terms,
                                       augment=augment),
                    opt_G=make_optimizer(G_train, opts.lr, opts.G_reg_interval) if G_train else None,
                    opt_D=make_optimizer(D_train, opts.get('dlr', opts.lr), opts.D_reg_interval) if D_train else None,
                    num_trainable=dict(G=sum(p.numel() for p in G_train), D=sum(p.numel() for p in D_train)),
                    cur_nimg=0, cur_tick=0, batch_idx=0, lr_scale=1.0, tick_start_nimg=0,
                    checkpoint_time=time.time())
    state.callbacks = build_callbacks(opts, state)
    return state


def probe_method(opts, images, device, run_dir, labels=None):
    """Fill in the method options its probe computes from the target before adaptation (MethodSpec.probe, e.g.
    AdAM's importance mask), once: they join opts.method_options, hence training_options.json, every checkpoint
    and adapter, and a resumed run, whose options hold them, is not probed again.

    The probe gets run = EasyDict(images (uint8 [N, C, R, R]), device, opts, networks() -> a fresh (G, D) of the
    source, fit(G, D, trainable, kimg): train them with the run's own step). It runs under its own seed (the
    run's random state is left as it was); every process adapts with rank 0's result.
    """
    spec = get_method(opts.method)
    if spec.probe is None:
        return
    run = EasyDict(images=images, device=device, opts=opts, networks=lambda: build_networks(opts, device)[:2],
                   fit=lambda G, D, trainable, kimg: fit(opts, G, D, trainable, kimg, images, device, labels))
    try:
        with torch.random.fork_rng(devices=[device] if torch.device(device).type == 'cuda' else []):
            torch.manual_seed(opts.seed)
            found = spec.probe(run, **{**spec.options, **opts.method_options})
    except TrainingError as e:
        raise TrainingError(f'{opts.method} probe: {e}') from None
    found = distributed.gather_objects(found)[0]
    training_stats.collect()  # the probe's statistics are not the run's
    if found:
        opts.method_options = {**opts.method_options, **found}
        if distributed.rank() == 0:
            write_training_options(os.path.join(run_dir, 'training_options.json'), opts)


def fit(opts, G, D, trainable, kimg, images, device, labels=None):
    """Train `trainable` (tensors of G and D, changed in place) for `kimg` with the run's step, loss, batch and
    optimiser settings, without extra loss terms (a method's probe)."""
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    state = training_state(opts, device, G, D, G_ema, trainable, update_w_avg=False)
    while state.cur_nimg < kimg * 1000:
        training_step(state, opts, images, device, labels)


def track_w_avg(opts, spec):
    """Whether w_avg tracks the mapping output: the protocol's choice, else (older runs) the method's default."""
    value = opts.get('track_w_avg')
    return spec.update_w_avg if value is None else bool(value)


def loss_config(opts):
    """{term name: {weight, **options}} of the registered loss terms (fsgan.losses) a run uses: its `losses`,
    or for run folders written before the registry, its mode_seeking / mode_seeking_hinge / class_loss."""
    if 'losses' in opts:
        return opts.losses
    legacy = dict(mode_seeking=dict(weight=opts.get('mode_seeking', 0.0),
                                    hinge=bool(opts.get('mode_seeking_hinge', False))),
                  **{'class': dict(weight=opts.get('class_loss', 0.0))})
    return resolve_losses(legacy)


def prepare_loss_terms(state, opts, images, device):
    """Let each loss term compute the state it needs from the run (once: restored state is not recomputed)."""
    run = EasyDict(G=state.G, D=state.D, G_ema=state.G_ema, source=state.source, images=images, device=device,
                   opts=opts)
    for term in state.loss.terms:
        if term.needs_prepare():
            term.prepare(run)


def phases(state, opts):
    """[(name, optimizer, interval)] in stylegan2-ada-pytorch order (G before D)."""
    out = []
    for name, opt, interval in (('G', state.opt_G, opts.G_reg_interval), ('D', state.opt_D, opts.D_reg_interval)):
        if opt is None:
            continue
        if interval:
            out += [(name + 'main', opt, 1), (name + 'reg', opt, interval)]
        else:
            out += [(name + 'both', opt, 1)]
    return out


# ----------------------------------------------------------------------------- one step

def sample_reals(images, batch, mirror, device):
    """Random batch of targets: uint8 [N, C, R, R] -> (float [batch, C, R, R] in [-1, 1], indices [batch])."""
    idx = torch.randint(len(images), [batch])
    x = images[idx]
    if torch.device(device).type == 'cuda':
        x = x.pin_memory()  # page-locked, so the copy below runs without blocking the host
    x = x.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
    if mirror:
        flip = torch.rand([batch, 1, 1, 1], device=device) < 0.5
        x = torch.where(flip, x.flip(3), x)
    return x, idx


def sample_conditions(c_dim, labels, real_idx, device):
    """Conditioning for one batch: (real_c, gen_c), each [len(real_idx), c_dim].

    Labelled targets (--cond): the reals' own classes, and for G classes drawn from the targets' labels
    (as often as they occur there). A conditional network on unlabelled targets: uniform random classes
    for both, so D cannot tell reals from fakes by their class.
    """
    n = len(real_idx)
    if c_dim == 0:
        return one_hot(real_idx, 0, device), one_hot(real_idx, 0, device)
    if labels is not None:
        return (one_hot(labels[real_idx], c_dim, device),
                one_hot(labels[torch.randint(len(labels), [n])], c_dim, device))
    return (one_hot(torch.randint(c_dim, [n]), c_dim, device),
            one_hot(torch.randint(c_dim, [n]), c_dim, device))


class FiniteCheck:
    """NaN/Inf detection over one training step with a single host sync.

    add() queues, per phase, the loss values and max |.| of every gradient (or weight) in one device
    tensor, without waiting for the device; result() reads all of them at once and raises TrainingError
    naming the first phase (in step order) and what was non-finite there, or returns the loss values.
    """

    def __init__(self):
        self._entries = []  # (phase, what, loss names, checked params, probe [len(names) + len(params)])

    def add(self, phase, losses, params, what='gradient'):
        """Queue `losses` {name: value or 0-dim tensor} and the gradient or value (what='weight') of `params`."""
        checked = [(p, p.grad if what == 'gradient' else p) for p in params]
        checked = [(p, t.detach()) for p, t in checked if t is not None]
        device = checked[0][1].device if checked else torch.device('cpu')
        parts = [torch.as_tensor(v, dtype=torch.float32, device=device).reshape(1) for v in losses.values()]
        if checked:  # max |x|: NaN-propagating like a norm, but cannot overflow on large finite values
            parts += [n.float().reshape(1) for n in torch._foreach_norm([t for _p, t in checked], ord=float('inf'))]
        probe = torch.cat(parts) if parts else torch.zeros([0], device=device)
        self._entries.append((phase, what, list(losses), [p for p, _t in checked], probe))

    def result(self, state):
        """{loss name: float} of every phase added; TrainingError on the first non-finite value."""
        if not self._entries:
            return {}
        device = self._entries[0][4].device
        values = torch.cat([e[4].to(device) for e in self._entries]).tolist()  # the one host sync
        losses, offset = {}, 0
        for phase, what, names, params, probe in self._entries:
            chunk, offset = values[offset:offset + len(probe)], offset + len(probe)
            bad = [f'{k}={v}' for k, v in zip(names, chunk) if not math.isfinite(v)]
            idx = next((i for i, v in enumerate(chunk[len(names):]) if not math.isfinite(v)), None)
            if not bad and idx is not None:  # name the tensor only on failure: the lookup walks both networks
                tensor_names = {id(p): n for net in ('G', 'D') for n, p in state[net].named_parameters()}
                bad.append(f'{what} of {tensor_names.get(id(params[idx]), "?")}')
            if bad:
                raise TrainingError(f'non-finite value at kimg {state.cur_nimg / 1000:.3f} (phase {phase}): '
                                    + ', '.join(bad))
            losses.update(zip(names, chunk[:len(names)]))
        return losses


@contextlib.contextmanager
def gradients_only_for(opt, optimizers):
    """Within the block the tensors that the other `optimizers` train do not require gradients, so a phase's
    backward pass computes no weight gradients it would discard (Gmain backpropagates through D only for the
    gradient with respect to the images), as stylegan2-ada-pytorch turns requires_grad on for the phase's
    module only. Tensors `opt` trains are left alone, also where another optimizer holds them too."""
    own = {id(p) for g in opt.param_groups for p in g['params']}
    others = [p for o in optimizers if o is not None and o is not opt for g in o.param_groups for p in g['params']
              if id(p) not in own and p.requires_grad]
    for p in others:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in others:
            p.requires_grad_(True)


def training_step(state, opts, images, device, labels=None):
    """One batch through every due phase, then the G_ema update. Returns {loss name: value}.

    labels: int64 [N] classes of `images` (conditional training) or None.
    With several processes each computes batch / world_size samples and gradients are averaged.
    Losses, gradients and weights are checked for NaN/Inf once, after the last phase (one host sync
    per step); a later phase may then run on a broken state, which the error discards.
    opts.bf16_conv: the phases' float32 convolutions compute in bfloat16 (conv2d_resample.compute_dtype);
    the G_ema update, snapshot grids and metrics stay in float32.
    """
    batch = opts.batch // distributed.world_size()
    real, real_idx = sample_reals(images, batch, opts.mirror, device)
    real_c, gen_c = sample_conditions(state.G.c_dim, labels, real_idx, device)
    checks = FiniteCheck()
    state.loss.begin_batch(state.batch_idx)
    with conv2d_resample.compute_dtype(torch.bfloat16 if opts.get('bf16_conv') else None):
        for name, opt, interval in phases(state, opts):
            if state.batch_idx % interval != 0:
                continue
            gen_z = torch.randn([batch, state.G.z_dim], device=device)  # fresh latents for every phase
            params = [p for g in opt.param_groups for p in g['params']]
            opt.zero_grad(set_to_none=True)
            with gradients_only_for(opt, (state.opt_G, state.opt_D)):
                losses = state.loss.accumulate_gradients(name, real, real_c, gen_z, gen_c, gain=interval)
            losses = distributed.average_gradients(params, losses)
            checks.add(name, losses, params)
            opt.step()
            checks.add(name, {}, params, what='weight')
            for p in params:
                p.grad = None
    all_losses = checks.result(state)
    update_ema(state, opts, opts.batch)
    state.cur_nimg += opts.batch
    state.batch_idx += 1
    run_callbacks(state.callbacks, 'step', state, opts)
    return all_losses


@torch.no_grad()
def update_ema(state, opts, batch):
    """G_ema <- G_ema + (1 - beta) (G - G_ema) over trainable tensors; copy buffers."""
    ema_nimg = opts.ema_kimg * 1000
    if opts.ema_rampup is not None:
        ema_nimg = min(ema_nimg, state.cur_nimg * opts.ema_rampup)
    beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
    ema_params = dict(state.G_ema.named_parameters())
    for name, p in state.G.named_parameters():
        if p.requires_grad:
            ema_params[name].copy_(p.detach().lerp(ema_params[name], beta))
    ema_buffers = dict(state.G_ema.named_buffers())
    for name, b in state.G.named_buffers():
        ema_buffers[name].copy_(b)


# ----------------------------------------------------------------------------- maintenance

def grid_latents(opts, G, device):
    """Fixed latents for the snapshot grid: z [n, z_dim] from opts.grid_seed."""
    gen = torch.Generator().manual_seed(opts.grid_seed)
    return torch.randn([opts.grid_size, G.z_dim], generator=gen).to(device)


@torch.no_grad()
def render_grid(state, opts, device, path):
    z = grid_latents(opts, state.G_ema, device)
    c_dim = state.G_ema.c_dim
    c = one_hot(torch.arange(len(z)) % max(c_dim, 1), c_dim, device)  # class i % c_dim, as the metrics
    imgs = torch.cat([state.G_ema(zz, cc, truncation_psi=opts.grid_trunc, noise_mode='const')
                      for zz, cc in zip(z.split(8), c.split(8))])
    save_png(tile(to_uint8(imgs)), path)


def rng_state():
    """All RNG states as tensors and plain data (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(torch=torch.random.get_rng_state(), numpy=(name, torch.from_numpy(keys.astype(np.int64)), pos,
                                                           has_gauss, cached),
                python=random.getstate(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def set_rng_state(s):
    torch.random.set_rng_state(s['torch'])
    name, keys, pos, has_gauss, cached = s['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(s['python'])
    if s.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s['cuda'])


def save_checkpoint(state, opts, run_dir):
    """Everything a resume needs, in plain tensors and data (torch.save), written atomically (rank 0)."""
    rng_states = distributed.gather_objects(rng_state())  # one per rank
    # What each rank accumulates from its own batches (ADA's sign sums since its last adjustment, the path-length
    # mean) differs per rank: each rank's is kept, as its RNG state is
    augment_states = distributed.gather_objects({k: v.cpu() for k, v in state.augment.state_dict().items()})
    pl_means = distributed.gather_objects(state.loss.pl_mean.cpu())
    state.checkpoint_time = time.time()
    if distributed.rank() != 0:
        return
    payload = dict(
        G=state.G.state_dict(), D=state.D.state_dict(), G_ema=state.G_ema.state_dict(),
        opt_G=state.opt_G.state_dict() if state.opt_G else None,
        opt_D=state.opt_D.state_dict() if state.opt_D else None,
        pl_mean=pl_means[0], pl_mean_per_rank=pl_means, loss_terms=[t.state_dict() for t in state.loss.terms],
        augment=augment_states[0], augment_per_rank=augment_states,
        callbacks=callbacks_state(state.callbacks),
        cur_nimg=state.cur_nimg, cur_tick=state.cur_tick, tick_start_nimg=state.tick_start_nimg,
        batch_idx=state.batch_idx, lr_scale=state.lr_scale, rng=rng_states,
        G_init_kwargs=json.loads(json.dumps(state.G_init_kwargs)),
        D_init_kwargs=json.loads(json.dumps(state.D_init_kwargs)),
        source_sha256=state.source_sha256, options=json.loads(json.dumps(opts)),
    )
    with ctrl_c_deferred(), atomic_open(os.path.join(run_dir, 'checkpoint.pt')) as f:
        torch.save(payload, f)


def write_snapshot(state, opts, run_dir):
    """Sample grid, baked network pickle and adapter file (rank 0), the snapshot callbacks, then the checkpoint
    (last, so it marks completion and holds the callbacks' state)."""
    distributed.assert_in_sync(state.G, 'G')
    with ctrl_c_deferred():  # a Ctrl-C meanwhile stops the run after the checkpoint, not inside a torch.save
        if distributed.rank() == 0:
            write_artefacts(state, opts, run_dir)
        run_callbacks(state.callbacks, 'snapshot', state, opts, run_dir)
        save_checkpoint(state, opts, run_dir)  # every rank takes part in gathering the RNG states


def write_artefacts(state, opts, run_dir):
    """fakes{tag}.png, network-snapshot-{tag}.pkl and (adapting a source) adapter-{tag}.pt of the current state."""
    tag = export.artefact_tag(state.cur_nimg)
    device = next(state.G_ema.parameters()).device
    render_grid(state, opts, device, os.path.join(run_dir, f'fakes{tag}.png'))
    export.save_snapshot(os.path.join(run_dir, f'network-snapshot-{tag}.pkl'), state.G, state.D, state.G_ema,
                         training_set_kwargs=dict(path=opts.target_dir, resolution=opts.resolution,
                                                  use_labels=bool(opts.get('cond')), xflip=opts.mirror,
                                                  max_size=opts.shots))
    if state.source_sha256 is not None:
        export.save_adapter(os.path.join(run_dir, f'adapter-{tag}.pt'), opts.method, opts.method_options,
                            state.source_sha256, state.G, state.D, state.G_ema, start=opts.get('start') or 'G_ema')


CHECKPOINT_KEYS = ('G', 'D', 'G_ema', 'opt_G', 'opt_D', 'pl_mean', 'cur_nimg', 'cur_tick', 'batch_idx', 'rng')


def damaged_checkpoint(run_dir, reason, opts=None):
    """TrainingError for an unreadable checkpoint.pt: names the last snapshot and a command that continues from it
    in a new run (with the run's target, shots, method and remaining kimg when `opts` are given)."""
    import shlex
    path = os.path.join(run_dir, 'checkpoint.pt')
    snapshot = export.latest_artefact(run_dir, 'network-snapshot-', '.pkl')
    if snapshot is None:
        return TrainingError(f'{path} is damaged ({reason}) and the run has no snapshot yet; start a new run')
    kimg = export.artefact_kimg(snapshot)
    words = ['python', 'scripts/train.py', '--resume', snapshot]
    if opts is not None:
        words += ['--target-dir', str(opts.target_dir), '--method', str(opts.method)]
        words += ['--shots', str(opts.shots)] if opts.get('shots') is not None else []
        words += ['--kimg', f'{opts.kimg - kimg:g}'] if opts.kimg > kimg else []
        words += ['--outdir', os.path.dirname(os.path.abspath(run_dir))]
    return TrainingError(f'{path} is damaged ({reason}); the last snapshot is {snapshot} (kimg {kimg:g}); continue '
                         f'from it in a new run (its optimiser state is lost) with: {shlex.join(words)}')


def read_checkpoint(run_dir, opts=None, mmap=False):
    """run_dir/checkpoint.pt as save_checkpoint wrote it; TrainingError when it is missing or damaged (see
    damaged_checkpoint). mmap: map tensors instead of reading them (for a quick look at the counters)."""
    import zipfile
    path = os.path.join(run_dir, 'checkpoint.pt')
    if not os.path.isfile(path):
        raise TrainingError(f'--resume-run {run_dir}: no checkpoint.pt yet (the run stopped before its first '
                            f'checkpoint); start a new run instead')
    if not zipfile.is_zipfile(path):
        raise damaged_checkpoint(run_dir, 'not a complete torch.save archive', opts)
    try:
        ck = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
        missing = [k for k in CHECKPOINT_KEYS if k not in ck] if isinstance(ck, dict) else ['entries']
        if missing:
            raise ValueError(f'it has no {", ".join(missing)}')
    except Exception as e:  # torch raises many types, with long messages, for a damaged file
        reason = re.split(r'(?<=[.;:])\s|\n', str(e).strip())[0][:100] or type(e).__name__
        if 'weights' in reason.lower():  # torch's advice to unpickle arbitrary objects does not apply
            reason = 'it holds more than tensors and plain data'
        raise damaged_checkpoint(run_dir, reason, opts) from None
    return ck


def own_rank_entry(ck, key):
    """This rank's ck[key + '_per_rank'] entry, or ck[key] (rank 0's) in checkpoints written before those lists."""
    per_rank = ck.get(key + '_per_rank')
    return per_rank[distributed.rank()] if per_rank and len(per_rank) == distributed.world_size() else ck[key]


def check_checkpoint_source(ck, sha256, source, run_dir):
    """TrainingError unless the source network (`source`, its file's `sha256`) is the one checkpoint `ck` of
    run_dir trained from: resuming on another would stamp the run's adapters with the wrong source."""
    made_from = ck.get('source_sha256')
    if made_from is not None and made_from != sha256:
        raise TrainingError(f'{source or "the source network"} is not the network {run_dir} was trained from '
                            f'(sha256 {str(sha256)[:12]}..., the run\'s {made_from[:12]}...); put the original back '
                            f'to resume')


def load_checkpoint(state, run_dir, opts=None):
    """Restore networks, optimisers, counters and RNG from run_dir/checkpoint.pt (TrainingError if it cannot)."""
    ck = read_checkpoint(run_dir, opts)
    check_checkpoint_source(ck, state.source_sha256, (opts or {}).get('source'), run_dir)
    try:
        for key in ('G', 'D', 'G_ema'):
            state[key].load_state_dict(ck[key], strict=True)
        for key in ('opt_G', 'opt_D'):
            if state[key] is not None:
                state[key].load_state_dict(ck[key])
    except (RuntimeError, KeyError, ValueError) as e:
        raise TrainingError(f'{os.path.join(run_dir, "checkpoint.pt")} does not fit the networks of '
                            f'training_options.json ({str(e).strip().splitlines()[0]}); restore either file') from None
    state.loss.pl_mean = own_rank_entry(ck, 'pl_mean')
    for term, term_state in zip(state.loss.terms, ck.get('loss_terms', [{}] * len(state.loss.terms))):
        term.load_state_dict(term_state)
    if 'augment' in ck:  # checkpoints written before augmentation existed have none
        state.augment.load_state_dict(own_rank_entry(ck, 'augment'), strict=True)
    load_callbacks_state(state.callbacks, ck.get('callbacks', {}))
    state.cur_nimg, state.cur_tick, state.batch_idx = ck['cur_nimg'], ck['cur_tick'], ck['batch_idx']
    state.tick_start_nimg = ck.get('tick_start_nimg', state.cur_nimg)  # older checkpoints: all at a tick's end
    state.lr_scale = ck.get('lr_scale', 1.0)
    states = ck['rng']
    if len(states) != distributed.world_size():
        raise TrainingError(f'--resume-run {run_dir}: the run used {len(states)} process(es); '
                            f'resume it with --gpus {len(states)}')
    set_rng_state(states[distributed.rank()])


# ----------------------------------------------------------------------------- main loop

def training_loop(opts, run_dir, images, resume=False, progress=True, labels=None):
    """Train until opts.kimg; write ticks, snapshots and checkpoints into run_dir.

    images: uint8 tensor [N, C, R, R] of targets; labels: int64 [N] classes for conditional training, or
    None. Returns the final state.
    """
    device = torch.device(opts.device)
    if device.type == 'cuda' and distributed.world_size() > 1:
        device = torch.device('cuda', distributed.rank())
    configure_backends(device, opts.get('allow_tf32', False))
    warn_slow_bf16(device, opts.get('bf16_conv', False))
    images = torch.as_tensor(images)
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.int64)
    state = start_run(opts, run_dir, images, labels, device, resume)
    log = TickLog(opts, run_dir, state.cur_nimg, progress and distributed.rank() == 0)
    total_nimg = int(opts.kimg * 1000)
    rollbacks = 0
    while state.cur_nimg < total_nimg:
        try:
            losses = training_step(state, opts, images, device, labels)
        except TrainingError as e:
            if opts.get('nan_policy', 'stop') != 'rollback' or rollbacks >= MAX_ROLLBACKS:
                raise
            rollbacks += 1
            roll_back(state, run_dir, e)
            log.rolled_back(state.cur_nimg)
            continue
        log.step(losses)
        done = state.cur_nimg >= total_nimg
        if state.cur_nimg >= state.tick_start_nimg + int(opts.kimg_per_tick * 1000) or done:
            end_tick(state, opts, run_dir, log, done)
        elif checkpoint_due(state, opts):
            with ctrl_c_deferred():  # as in end_tick
                save_checkpoint(state, opts, run_dir)  # reads the state only: the run goes on exactly as without it
    log.close()
    return state


def start_run(opts, run_dir, images, labels, device, resume):
    """Seeded setup of a run: the method's probe, networks, optimisers, restored checkpoint (resume) or a first
    one, and the loss terms' prepared state. Returns the training state."""
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    random.seed(opts.seed)
    probe_method(opts, images, device, run_dir, labels)
    state = setup_run(opts, device)
    for net in (state.G, state.D, state.G_ema):
        distributed.broadcast_module(net)
    rank_seed = opts.seed * 1000003 + distributed.rank()  # different data and latents per rank
    torch.manual_seed(rank_seed)
    np.random.seed(rank_seed % (2 ** 32))
    random.seed(rank_seed)
    if resume:
        load_checkpoint(state, run_dir, opts)
        forget_records_after(run_dir, state.cur_nimg)
    prepare_loss_terms(state, opts, images, device)
    if not resume:
        save_checkpoint(state, opts, run_dir)  # at once: a run stopped before its first snapshot can be resumed
    if distributed.rank() == 0:
        provenance.record_session(run_dir, device, state.cur_nimg / 1000, distributed.world_size())
    return state


TICK_LINE_STATS = (('G', 'Loss/G/loss'), ('D', 'Loss/D/loss'), ('r1', 'Loss/r1_penalty'), ('pl', 'Loss/pl_penalty'),
                   ('aug', 'Progress/augment'))  # (label, stat) of the per-tick line printed without a progress bar


def tick_line(record):
    """One line of text for a tick record of stats.jsonl: tick, kimg, seconds per tick, img/s, main losses."""
    words = [f'tick {record["tick"]:<5d}', f'kimg {record["kimg"]:<9.3f}', f'sec/tick {record["sec_per_tick"]:<7.1f}']
    if record.get('img_per_sec'):
        words.append(f'img/s {record["img_per_sec"]:<6.1f}')
    words += [f'{label} {record["stats"][key]:.3f}' for label, key in TICK_LINE_STATS if key in record['stats']]
    return '  '.join(words)


CLOCK_STEPS_MULTI_RANK = 16  # with several ranks, steps between looks at the clock (each look is a collective)


def checkpoint_due(state, opts):
    """--checkpoint-minutes: whether that many minutes have passed since the last checkpoint. Rank 0's clock
    decides for every rank (they must all take part in save_checkpoint); with several ranks it is read every
    CLOCK_STEPS_MULTI_RANK steps only, so that the decision's broadcast does not sync every step."""
    minutes = opts.get('checkpoint_minutes') or 0
    if not minutes or (distributed.world_size() > 1 and state.batch_idx % CLOCK_STEPS_MULTI_RANK):
        return False
    return distributed.rank0_decides(time.time() - state.checkpoint_time >= minutes * 60)


class TickLog:
    """Progress bar, stats.jsonl and TensorBoard of a run (files and bar on rank 0 only). Without the bar, rank 0
    prints a tick_line per tick instead (flushed, for a run whose output goes to a log file). A tick's img/s counts
    the images since the tick's timing started: its start, or the resume of a run stopped within it."""

    def __init__(self, opts, run_dir, cur_nimg, progress):
        self.is_main = distributed.rank() == 0
        self.stats_path = os.path.join(run_dir, 'stats.jsonl')
        self.tb = ScalarWriter(run_dir) if self.is_main else None
        self.total_nimg, self.batch = int(opts.kimg * 1000), opts.batch
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total_nimg, initial=cur_nimg, unit='kimg', unit_scale=0.001,
                            bar_format='{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}]{postfix}')
        self.timed_since, self.timed_from_nimg = time.time(), cur_nimg

    def rolled_back(self, cur_nimg):
        """The run went back to cur_nimg images (--nan-policy rollback): the tick's timing starts again there."""
        if self.bar is not None:
            self.bar.n = cur_nimg
        self.timed_since, self.timed_from_nimg = time.time(), cur_nimg

    def step(self, losses):
        if self.bar is not None:
            self.bar.update(min(self.batch, self.total_nimg - self.bar.n))  # tqdm drops its total once n passes it
            self.bar.set_postfix({k: f'{v:.3f}' for k, v in losses.items() if k in ('G', 'Dreal', 'Dgen')})

    def tick(self, state):
        """Collect the tick's statistics (every rank) and record them (rank 0)."""
        seconds = time.time() - self.timed_since
        record = dict(tick=state.cur_tick, kimg=state.cur_nimg / 1000, sec_per_tick=seconds,
                      timestamp=time.time(), stats={k: v['mean'] for k, v in training_stats.collect().items()})
        if self.is_main:
            append_line(self.stats_path, json.dumps(record))
            if self.bar is None:
                images = state.cur_nimg - self.timed_from_nimg
                print(tick_line(dict(record, img_per_sec=images / seconds if seconds > 0 else None)), flush=True)
            self.tb.add_scalars(dict(record['stats'], **{'Timing/sec_per_tick': record['sec_per_tick']}),
                                step=state.cur_nimg)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def end_tick(state, opts, run_dir, log, done):
    """A tick's stats, its callbacks, and a snapshot (with its callbacks) when one is due."""
    state.cur_tick += 1
    state.tick_start_nimg = state.cur_nimg  # the next tick's start, as the checkpoints below record it
    for name, value in state.augment.tick_stats().items():
        training_stats.report(name, value)
    log.tick(state)
    run_callbacks(state.callbacks, 'tick', state, opts, run_dir)
    if done or (opts.snap and state.cur_tick % opts.snap == 0):
        write_snapshot(state, opts, run_dir)
    elif opts.get('checkpoint_ticks') and state.cur_tick % opts.checkpoint_ticks == 0:
        with ctrl_c_deferred():  # as in write_snapshot: every rank finishes gathering the RNG states
            save_checkpoint(state, opts, run_dir)  # reads the state only: the run goes on exactly as without it
    log.timed_since, log.timed_from_nimg = time.time(), state.cur_nimg


MAX_ROLLBACKS = 3


def roll_back(state, run_dir, error):
    """--nan-policy rollback: reload the last checkpoint and halve the learning rate."""
    if not os.path.exists(os.path.join(run_dir, 'checkpoint.pt')):
        raise TrainingError(f'{error}; no snapshot to roll back to yet') from None
    load_checkpoint(state, run_dir)
    forget_records_after(run_dir, state.cur_nimg)
    state.lr_scale *= 0.5
    for opt in (state.opt_G, state.opt_D):
        if opt is not None:
            for group in opt.param_groups:
                group['lr'] *= 0.5
    if distributed.rank() == 0:
        print(f'[nan-policy rollback] {error}; rolled back to kimg {state.cur_nimg / 1000:.3f}, '
              f'learning rate x{state.lr_scale:g}')


def forget_records_after(run_dir, cur_nimg):
    """Back at a checkpoint (resume, rollback): rank 0 drops the tick and metric records written after it, which
    will be redone."""
    if distributed.rank() == 0:
        for name in ['stats.jsonl'] + sorted(glob.glob('metric-*.jsonl', root_dir=run_dir)):
            drop_stats_after(os.path.join(run_dir, name), cur_nimg)


def drop_stats_after(stats_path, cur_nimg):
    """On resume, forget the records (JSON lines with a kimg) written after the checkpoint (they will be redone)."""
    if not os.path.exists(stats_path):
        return
    with open(stats_path) as f:
        lines = [line for line in f if line.strip()]
    keep = []
    for line in lines:
        try:
            if json.loads(line)['kimg'] * 1000 <= cur_nimg + 1e-6:
                keep.append(line)
        except (ValueError, KeyError):
            pass  # a line cut by a kill
    if len(keep) != len(lines):
        with atomic_open(stats_path) as f:
            f.write(''.join(keep).encode())


def write_run_files(run_dir, opts, target_record):
    """Options and target provenance, written once at the start of a run."""
    write_training_options(os.path.join(run_dir, 'training_options.json'), opts)
    atomic_write_json(os.path.join(run_dir, 'target_shots.json'), target_record)
