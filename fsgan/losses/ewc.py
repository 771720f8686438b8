"""Elastic weight consolidation for few-shot adaptation (Li et al., NeurIPS 2020, "Few-shot Image Generation with
Elastic Weight Consolidation", Eq. 2-3): G's loss gains

    lambda * sum_i F_i (theta_i - theta_S,i)^2

over G's trainable tensors theta, where theta_S are their values when the run starts (the source) and F is the
diagonal of the empirical Fisher information of the source G: the mean over `samples` generated images x = G(z)
of the squared gradient of the source D's log-likelihood that x is real, log sigmoid(D(x)) (the binary
cross-entropy of D's output, as the paper estimates it). The term's weight is lambda (the method `ewc` brings the
paper's 5e8). F and theta_S are computed once, before the first step, and kept in checkpoint.pt.
"""
import torch

from torch_utils.misc import one_hot
from .registry import LossTerm, LossTermSpec, register


def fisher_diagonal(G, D, samples, seed=0):
    """{name: F [same shape]} for G's tensors with requires_grad: the mean over `samples` single generated images
    of (d log sigmoid(D(G(z))) / d theta)^2, each image its own gradient (a Fisher diagonal sums squares of
    per-sample gradients, not the square of a batch gradient).

    z ~ N(0, I) and G's noise come from a generator seeded with `seed`; the caller's random state is left as it was.
    Conditional networks draw a uniform class per image. w_avg is not updated.
    """
    named = [(n, p) for n, p in G.named_parameters() if p.requires_grad]
    sums = [torch.zeros_like(p) for _n, p in named]
    device = named[0][1].device
    with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
        torch.manual_seed(seed)
        for _ in range(samples):
            z = torch.randn([1, G.z_dim], device=device)
            c = one_hot(torch.randint(max(G.c_dim, 1), [1]), G.c_dim, device)
            img = G.synthesis(G.mapping(z, c, skip_w_avg_update=True))              # [1, C, R, R]
            log_likelihood = -torch.nn.functional.softplus(-D(img, c)).sum()      # log sigmoid(logit)
            grads = torch.autograd.grad(log_likelihood, [p for _n, p in named], allow_unused=True)
            for total, g in zip(sums, grads):
                if g is not None:
                    total.add_(g.detach().square())
    return {n: total / samples for (n, _p), total in zip(named, sums)}


class ElasticWeightConsolidation(LossTerm):
    """lambda * sum F (theta - theta_S)^2 of G's trainable tensors (a 0-dim tensor; 0 while G is the source)."""
    phases = frozenset({'G'})
    stat = 'ewc'

    def __init__(self, weight, samples=1000):
        super().__init__(weight)
        if samples < 1:
            raise ValueError(f'loss term ewc: samples must be >= 1, got {samples}')
        self.samples = int(samples)
        self.fisher = None      # {name: F}, G's trainable tensors
        self.anchor = None      # {name: theta_S}
        self._pairs = None      # [(tensor of G, F, theta_S)] on G's device, built at the first step

    def needs_prepare(self):
        return self.fisher is None

    def prepare(self, run):
        self.fisher = fisher_diagonal(run.G, run.D, self.samples, seed=run.opts.get('seed', 0))
        params = dict(run.G.named_parameters())
        self.anchor = {n: params[n].detach().clone() for n in self.fisher}
        self._pairs = None

    def G_value(self, ctx):
        if self._pairs is None:
            self._pairs = self._bind(ctx.G)
        penalty = torch.zeros([], device=self._pairs[0][0].device)
        for p, fisher, anchor in self._pairs:
            penalty = penalty + (fisher * (p - anchor).square()).sum()
        return penalty

    def _bind(self, G):
        """Pair G's tensors with their F and theta_S (moved to G's device once)."""
        assert self.fisher is not None, 'loss term ewc: prepare() has not run'
        params = dict(G.named_parameters())
        missing = sorted(set(self.fisher) - set(params))
        if missing:
            raise ValueError(f'loss term ewc: the generator has no tensor(s) {", ".join(missing[:3])}; the Fisher '
                             f'information was computed for another network')
        return [(params[n], f.to(params[n].device), self.anchor[n].to(params[n].device))
                for n, f in self.fisher.items()]

    def state_dict(self):
        return {} if self.fisher is None else {'fisher': self.fisher, 'anchor': self.anchor}

    def load_state_dict(self, state):
        self.fisher = state.get('fisher')
        self.anchor = state.get('anchor')
        self._pairs = None


register(LossTermSpec(name='ewc', build=ElasticWeightConsolidation, options=dict(samples=1000),
                      description='elastic weight consolidation of G (Li et al. 2020): weight = lambda; '
                                  'samples = generated images for the Fisher information'))
