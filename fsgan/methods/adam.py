"""AdAM (Zhao et al., NeurIPS 2022, "Few-shot Image Generation via Adaptation-Aware Kernel Modulation"; official
code yunqing-me/AdAM): keep the source kernels that matter for the target, through a rank-1 modulation, and
fine-tune the others.

1. Importance probing (`probe`, run by the training loop before adaptation, MethodSpec.probe): every kernel of
   the source is modulated and only the modulations (with the biases, noise strengths and D's epilogue) train on
   the target for `probe_kimg` (2 kimg: the official 500 iterations at batch 4). Then the Fisher information of
   each modulation tensor, the mean over `probe_samples` (1000) single images of its squared gradient, scores
   every filter: for G the gradient of the non-saturating G loss of one generated image, for D that of D's
   logistic loss on one target and one generated image. Per group (G's synthesis convs, their style affines,
   D's block convs) the filters scoring above the `quantile`-th percentile (50, as the official code's default
   and its FFHQ->Babies run; 75 for AFHQ-Cat) are the important ones. The result is the option `mask`, recorded
   in training_options.json, every checkpoint and adapter, so it is computed once per run.
2. Adaptation (`apply`): each important filter (row along dim 0 of a weight) becomes W0 * (1 + v u^T) with the
   source row W0 frozen (reparam.KernelModulation: u per layer, v per filter, both N(0, 1e-14) at init, so step 0
   is the source); each other filter of a masked layer is fine-tuned. Layers outside the three groups are
   modulated whole (mapping network, 4x4 conv, toRGB and their affines, D's fromRGB). Every bias and noise
   strength trains (the official code trains additive shifts of them, the same function); D's epilogue is
   fine-tuned; G's constant input stays frozen. Snapshots bake the modulation into plain weights.

Layers of the official code (rosinality's StyleGAN2) and their names here:
    style.1-8                          mapping.fc0-7                           modulated
    conv1 (4x4) / to_rgb1, to_rgbs.i   synthesis.b4.conv1 / b4.torgb, b{8*2^i}.torgb   modulated (with affines)
    convs.2i, convs.2i+1               synthesis.b{8*2^i}.conv0, .conv1        masked ('G conv')
      their conv.modulation            ... .affine                             masked ('G affine')
      noise.weight, activate.bias      ... .noise_strength, .bias              trained
    input                              synthesis.b4.const                      frozen
    D convs.0                          b{R}.fromrgb                            modulated
    D convs.i.conv1, conv2, skip       b{R/2^(i-1)}.conv0, .conv1, .skip       masked ('D conv')
    D final_conv, final_linear.0, .1   b4.conv, b4.fc, b4.out                  fine-tuned
"""
import numpy as np
import torch

from training import networks
from . import layers, reparam
from .registry import MethodSpec, adapt, register

INIT_STD = 1e-7  # u and v ~ N(0, INIT_STD^2), as the official code


def _g_units(G):
    """[(name, layer with .weight, group)] of G in a fixed order; group None = modulated whole."""
    units = [(n, m, None) for n, m in layers.mapping_fcs(G)]
    if G.c_dim > 0:
        units.append(('mapping.embed', G.mapping.embed, None))
    for name, m in G.synthesis.named_modules():
        if isinstance(m, networks.SynthesisLayer):
            masked = m.resolution > 4  # every synthesis conv but the 4x4 one (the official code's `convs`)
            units += [(f'synthesis.{name}', m, 'G conv' if masked else None),
                      (f'synthesis.{name}.affine', m.affine, 'G affine' if masked else None)]
        elif isinstance(m, networks.ToRGBLayer):
            units += [(f'synthesis.{name}', m, None), (f'synthesis.{name}.affine', m.affine, None)]
        elif isinstance(m, networks.Conv2dLayer):  # skip convs of a 'resnet' synthesis network
            units.append((f'synthesis.{name}', m, None))
    return units


def _d_units(D):
    """[(name, layer, group)] of D: fromRGB modulated whole, the block convs masked ('D conv')."""
    units = []
    for name, m in layers.d_layers_from_image(D):
        if name.endswith('.fromrgb'):
            units.append((name, m, None))
        elif not name.startswith('b4.'):
            units.append((name, m, 'D conv'))
    return units


def _direct(G, D):
    """Tensors that train as they are: G's biases and noise strengths; D's biases, epilogue and label mapping."""
    out = [p for n, p in G.named_parameters() if n.endswith(('.bias', '.noise_strength'))]
    if D is not None:
        chosen = {id(p): p for n, p in D.named_parameters() if n.endswith('.bias')}
        for net in (D.b4.conv, D.b4.fc, D.b4.out) + ((D.mapping,) if hasattr(D, 'mapping') else ()):
            chosen.update({id(p): p for p in net.parameters()})
        out += list(chosen.values())
    return out


def mask_length(units):
    """Number of filters the mask decides over in `units` (rows of the masked layers' weights)."""
    return sum(m.weight.shape[0] for _n, m, group in units if group is not None)


def encode_mask(g_bits, d_bits):
    """bool [n_G], bool [n_D] -> 'n_G:hex/n_D:hex' (the bits packed 8 to a byte)."""
    def part(bits):
        return f'{len(bits)}:' + np.packbits(bits.cpu().numpy().astype(np.uint8)).tobytes().hex()
    return part(g_bits) + '/' + part(d_bits)


def decode_mask(mask, n_g, n_d):
    """'n_G:hex/n_D:hex' -> (bool [n_G], bool [n_D]); '' = every filter important. n_d None: D's part unchecked."""
    if not mask:
        return torch.ones([n_g], dtype=torch.bool), torch.ones([n_d or 0], dtype=torch.bool)
    texts = str(mask).split('/')
    if len(texts) != 2:
        raise ValueError('method adam: the mask needs a G part and a D part (G/D); leave it out to probe again')
    parts = []
    for text, n, net in zip(texts, (n_g, n_d), 'GD'):
        try:
            count, hex_bits = text.split(':')
            bits = np.unpackbits(np.frombuffer(bytes.fromhex(hex_bits), dtype=np.uint8))[:int(count)]
        except ValueError:
            raise ValueError(f'method adam: mask {str(mask)[:24]}... is not a mask written by the probe; '
                             f'leave the option out to probe the target again') from None
        if n is not None and len(bits) != n:
            raise ValueError(f'method adam: the mask decides over {len(bits)} filters of {net}, this {net} has {n}; '
                             f'it was probed on another network (leave mask out to probe again)')
        parts.append(torch.from_numpy(bits.astype(bool)))
    return parts[0], parts[1]


def _modulate(layer, important, seed):
    """Kernel-modulate the important filters of layer.weight, fine-tune the rest; returns the trainable tensors."""
    if not important.any():
        return [layer.weight]
    return reparam.add(layer, 'weight', reparam.KernelModulation(layer.weight, important, seed)).trainable()


def _adapt_units(units, bits, seed0):
    """Modulate every unit, its filters marked by consecutive slices of `bits` (whole units: all important)."""
    trainable, offset = [], 0
    for seed, (_name, m, group) in enumerate(units, start=seed0):
        n = m.weight.shape[0]
        important = torch.ones([n], dtype=torch.bool) if group is None else bits[offset:offset + n]
        offset += 0 if group is None else n
        trainable += _modulate(m, important, seed)
    return trainable


def apply(G, D, mask='', quantile=50.0, probe_kimg=2.0, probe_samples=1000):
    if not 0 <= quantile < 100:
        raise ValueError(f'method adam: quantile must be in [0, 100), got {quantile}')
    if not probe_kimg > 0 or probe_samples < 1:
        raise ValueError(f'method adam: probe_kimg must be > 0 and probe_samples >= 1, got {probe_kimg}, '
                         f'{probe_samples}')
    g_units = _g_units(G)
    d_units = _d_units(D) if D is not None else []
    g_bits, d_bits = decode_mask(mask, mask_length(g_units), mask_length(d_units) if D is not None else None)
    direct = _direct(G, D)
    return _adapt_units(g_units, g_bits, 0) + _adapt_units(d_units, d_bits, 100000) + direct


# ----------------------------------------------------------------------------- importance probing

def _scored(units):
    """[(group, u, v, bias or None)] of the masked units (every filter modulated, as in the probe)."""
    out = []
    for _name, m, group in units:
        if group is None:
            continue
        mod = m.parametrizations.weight[0]
        assert len(mod.v) == m.weight.shape[0], 'the probe modulates every filter'
        out.append((group, mod.u, mod.v, None if group == 'G conv' else m.bias))
    return out


def modulation_fisher(G, D, images, samples):
    """{id(tensor): F} for u, v and the biases of the masked layers of probe-adapted G and D: the mean over
    `samples` single images of the squared gradient of softplus(-D(G(z))) (G's tensors) and of
    softplus(-D(x)) + softplus(D(G(z))) (D's), x a random target image (uint8 `images` [N, C, R, R]).

    Uses the global random state (the loop runs the probe under its own seed). w_avg is not updated.
    """
    tensors = {'G': [t for s in _scored(_g_units(G)) for t in s[1:] if t is not None],
               'D': [t for s in _scored(_d_units(D)) for t in s[1:] if t is not None]}
    sums = {id(t): torch.zeros_like(t) for ts in tensors.values() for t in ts}
    device = next(G.parameters()).device
    for _ in range(samples):
        z = torch.randn([1, G.z_dim], device=device)
        c = torch.zeros([1, G.c_dim], device=device)
        if G.c_dim:
            c[0, torch.randint(G.c_dim, [])] = 1
        real = images[torch.randint(len(images), [1])].to(device, torch.float32) / 127.5 - 1   # [1, C, R, R]
        fake_logits = D(G.synthesis(G.mapping(z, c, skip_w_avg_update=True)), c)
        g_loss = torch.nn.functional.softplus(-fake_logits).sum()
        d_loss = torch.nn.functional.softplus(-D(real, c)).sum() + torch.nn.functional.softplus(fake_logits).sum()
        grads = torch.autograd.grad(g_loss, tensors['G'], retain_graph=True) + \
            torch.autograd.grad(d_loss, tensors['D'])
        for t, g in zip(tensors['G'] + tensors['D'], grads):
            sums[id(t)].add_(g.detach().square())
    return {k: v / samples for k, v in sums.items()}


def filter_scores(units, fisher):
    """[(group, scores [n_filters])] of the masked units, as the official code scores them: mean F(u) + F(v) for
    G's convs (and D's bias-free skips), (mean F(u) + F(v) + F(bias)) / 2 for the affines and D's convs."""
    out = []
    for group, u, v, bias in _scored(units):
        score = fisher[id(u)].mean() + fisher[id(v)]
        if bias is not None:
            score = (score + fisher[id(bias)]) / 2
        out.append((group, score))
    return out


def importance_mask(G, D, fisher, quantile):
    """The mask string: per group, the filters scoring above the group's `quantile`-th percentile."""
    parts = []
    for units in (_g_units(G), _d_units(D)):
        scored = filter_scores(units, fisher)
        cuts = {g: torch.quantile(torch.cat([s for gg, s in scored if gg == g]).double(), quantile / 100)
                for g in {g for g, _s in scored}}
        parts.append(torch.cat([s.double() > cuts[g] for g, s in scored]) if scored else torch.zeros([0], dtype=bool))
    return encode_mask(*parts)


def probe(run, mask='', quantile=50.0, probe_kimg=2.0, probe_samples=1000):
    """{'mask': ...} from a probe on the target (see the module docstring); {} when the mask is known."""
    if mask:
        return {}
    G, D = run.networks()
    trainable = adapt(G, D, method='adam', quantile=quantile, probe_kimg=probe_kimg, probe_samples=probe_samples)
    run.fit(G, D, trainable, probe_kimg)
    return dict(mask=importance_mask(G, D, modulation_fisher(G, D, run.images, probe_samples), quantile))


register(MethodSpec(
    name='adam',
    apply=apply,
    description='modulate the source kernels a probe on the target finds important, W * (1 + v u^T), fine-tune '
                'the rest (AdAM, Zhao et al. 2022); options quantile, probe_kimg, probe_samples',
    lr=0.002,
    update_w_avg=True,
    options=dict(mask='', quantile=50.0, probe_kimg=2.0, probe_samples=1000),
    probe=probe,
))
