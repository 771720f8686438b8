"""CDC's cross-domain distance consistency (Ojha et al., CVPR 2021, "Few-shot Image Generation via Cross-domain
Correspondence", Sec. 3.1), a G term that keeps the adapted G's samples as similar to each other as the source
G's samples of the same latents are.

For a batch of its own `batch` latents z_1..z_N (4, the official code's feat_const_batch), each sample i draws a
synthesis layer l_i; with F the flattened output of that layer,

    y_i^s = softmax_{j != i} cos(F^s(z_i), F^s(z_j)),   y_i^t likewise for the adapted G,
    value_i = KL(y_i^s || y_i^t) / (N - 1),   mean over i = the official code's KLDivLoss (mean over N (N - 1)).

The method's weight is 1000 (the official kl_wt, the paper's lambda). The frozen source G is the generator the
run started from (the source network's G or G_ema, --start); both run on the same latents and the same noise
draws, so the value is exactly 0 while the adapted G equals the source.

Layers (official code on rosinality's StyleGAN2 -> stylegan2-ada-pytorch names): the generator returns the output
of every StyledConv, index 0 the 4x4 conv, then per resolution r = 8..R the upsampling conv and the second conv;
the layer index is drawn uniformly from [1, n_latent - 1), i.e. every conv but the 4x4 one. Index 0 is
synthesis.b4.conv1 (never drawn), index 2k - 1 is synthesis.b{2^(k+2)}.conv0 and index 2k is
synthesis.b{2^(k+2)}.conv1 (k >= 1). Both are the same quantity (modulated conv + noise + bias, leaky ReLU times
sqrt 2). The features are read through forward hooks (fsgan.features), G itself is unchanged.
"""
import copy

import torch

from fsgan.export import starting_generator
from fsgan.features import capture_outputs
from fsgan.methods.layers import synthesis_convs
from .registry import LossTerm, LossTermSpec, register


def consistency_layers(G):
    """Names of the synthesis layers the term draws from: every synthesis conv but the 4x4 one (in G's order)."""
    return [name for name, _layer in synthesis_convs(G)[1:]]


def layer_features(G, z, c, names):
    """z [N, z_dim], c [N, c_dim] -> {name: [N, C * H * W] float32 output of that synthesis layer} (no style
    mixing, no truncation, w_avg untouched, fresh noise)."""
    with capture_outputs(G, names) as outputs:
        G.synthesis(G.mapping(z, c, skip_w_avg_update=True))
    return {name: outputs[name].to(torch.float32).flatten(1) for name in names}


def log_similarities(features, chosen):
    """features {name: [N, D]}, chosen[i] the layer of sample i -> [N, N - 1]: row i is log softmax over j != i of
    the cosine similarity of samples i and j at layer chosen[i]."""
    n = len(chosen)
    cos = {name: (lambda f: f @ f.T)(torch.nn.functional.normalize(f, dim=1)) for name, f in features.items()}
    rows = torch.stack([cos[name][i] for i, name in enumerate(chosen)])  # [N, N]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=rows.device)
    return torch.log_softmax(rows[off_diagonal].reshape(n, n - 1), dim=1)


def distance_consistency(source, G, z, c, chosen):
    """[N] KL(y_i^s || y_i^t) / (N - 1) for latents z [N, z_dim], c [N, c_dim] and layer names chosen [N]; the
    source runs without gradients, both generators on the same noise draws."""
    used = list(dict.fromkeys(chosen))
    devices = [z.device.index if z.device.index is not None else torch.cuda.current_device()] \
        if z.device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():  # the RNG is rewound for G's pass below
        log_s = log_similarities(layer_features(source.train(G.training), z, c, used), chosen)
    log_t = log_similarities(layer_features(G, z, c, used), chosen)
    return (log_s.exp() * (log_s - log_t)).sum(1) / (len(chosen) - 1)


class CDCDistance(LossTerm):
    """distance_consistency of a fresh batch of `batch` latents against a frozen copy of the source generator."""
    phases = frozenset({'G'})
    stat = 'cdc'

    def __init__(self, weight, batch=4):
        super().__init__(weight)
        if batch < 2:
            raise ValueError(f'loss term cdc_dist: batch must be >= 2 (pairs of samples), got {batch}')
        self.batch = int(batch)
        self.source = None  # frozen source generator, set by prepare()

    def needs_prepare(self):
        return self.source is None

    def prepare(self, run):
        """The frozen source G: a copy of the generator the run started from (loaded again on resume, not saved)."""
        if run.source is None:
            raise ValueError('loss term cdc_dist needs a source network (--resume); training from scratch has none')
        start = starting_generator(run.source, run.opts.get('start') or 'G_ema')
        self.source = copy.deepcopy(start).to(run.device).requires_grad_(False)

    def G_value(self, ctx):
        if self.source is None:
            raise RuntimeError('loss term cdc_dist: prepare(run) has not set the source generator')
        G = ctx.G
        z = torch.randn([self.batch, G.z_dim], device=ctx.gen_z.device)
        c = ctx.gen_c[torch.arange(self.batch, device=ctx.gen_c.device) % len(ctx.gen_c)]
        names = consistency_layers(G)
        chosen = [names[i] for i in torch.randint(len(names), [self.batch]).tolist()]  # CPU draw: no device sync
        return distance_consistency(self.source, G, z, c, chosen)


register(LossTermSpec(name='cdc_dist', build=CDCDistance, options=dict(batch=4),
                      description="CDC's cross-domain distance consistency against the source G (Ojha et al. 2021); "
                                  'batch: latents per step'))
