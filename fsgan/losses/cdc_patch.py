"""CDC's anchors and patch-level discriminator (Ojha et al., CVPR 2021, "Few-shot Image Generation via
Cross-domain Correspondence", Sec. 3.2): full realism only near a few anchor latents, patch-level realism elsewhere.

Every `anchor_every`-th training step (steps 0, 4, 8, ...; the official subspace_freq 4) is an anchor step: the
main phases' fakes come from latents near the anchors, z = anchor_k + anchor_std * n (k uniform, n ~ N(0, I),
anchor_std 0.1, no style mixing), and D judges whole images as usual. Every other step draws latents as usual and
D's logits for fakes and reals (and R1, on their per-image mean) are those of a patch head: a 3x3 conv to one
channel with leaky ReLU (the official `Extra` layer) on an intermediate D feature map, one logit per patch
through the logistic loss. There are `anchors` anchors (0 = one per target image, the official n_train), drawn
once from N(0, I) with a generator seeded from the run's seed; they and the head are the term's state
(checkpoint.pt). The weight only switches the term on: it adds no value to the loss.

Feature map (official code on rosinality's StyleGAN2 -> stylegan2-ada-pytorch names): the official D collects the
512-channel maps of 32x32 or 16x16 and, with its default highp = 1, always uses the first: the output of the
downsampling conv of the 64-pixel ResBlock (its conv2, before the residual sum), a 32x32 map. Here that is
`b64.conv1` (`layer` ''), or b{R}.conv1 for a D of resolution R < 64; any D conv layer can be named instead.
stylegan2-ada-pytorch's resnet blocks apply conv1 with gain sqrt(1/2); the head sees the map without that gain,
as the official head does. The map is read through a forward hook (fsgan.features); D itself is unchanged and
the head never enters snapshots or adapter files.
"""
import math

import numpy as np
import torch

from fsgan.features import capture_outputs
from training import networks
from .registry import LossTerm, LossTermSpec, register


def default_patch_layer(D):
    """The D conv whose output the patch head reads: b64.conv1, or the top block's conv1 below 64 pixels."""
    return f'b{min(64, D.img_resolution)}.conv1'


def anchor_seed(seed):
    """A seed for the anchors derived from the run's seed (distinct from the grid's, which uses the seed itself)."""
    return int(np.random.SeedSequence([int(seed), 0xCDC]).generate_state(1)[0])


class CDCPatch(LossTerm):
    """Anchor steps (image-level D on latents near the anchors) and patch steps (patch-level D elsewhere)."""
    phases = frozenset()
    stat = 'patch'

    def __init__(self, weight, anchors=0, anchor_every=4, anchor_std=0.1, layer=''):
        super().__init__(weight)
        checks = (('anchors', anchors, 0), ('anchor_every', anchor_every, 1), ('anchor_std', anchor_std, 0))
        for key, value, low in checks:
            if not value >= low:
                raise ValueError(f'loss term cdc_patch: {key} must be >= {low}, got {value}')
        self.num_anchors, self.anchor_every, self.anchor_std = int(anchors), int(anchor_every), float(anchor_std)
        self.layer = str(layer)
        self.anchors = None         # [A, z_dim], set by prepare() or load_state_dict()
        self.head = None            # Conv2dLayer(C, 1, 3, lrelu), set by attach()
        self.feature_gain = 1.0     # undoes the gain D applies to the layer's output
        self.patch_step = False

    def attach(self, G, D):
        """Build the patch head on D's `layer` (on D's device); returns its tensors for D's optimiser."""
        self.layer = self.layer or default_patch_layer(D)
        module = dict(D.named_modules()).get(self.layer)
        if not isinstance(module, networks.Conv2dLayer):
            raise ValueError(f'loss term cdc_patch: layer {self.layer!r} is not a conv layer of D '
                             f'(e.g. {default_patch_layer(D)})')
        block = dict(D.named_modules())[self.layer.rpartition('.')[0]]
        resnet_conv1 = self.layer.endswith('.conv1') and getattr(block, 'architecture', None) == 'resnet'
        self.feature_gain = math.sqrt(2) if resnet_conv1 else 1.0
        self.head = networks.Conv2dLayer(module.weight.shape[0], 1, kernel_size=3, activation='lrelu')
        self.head = self.head.to(module.weight.device)
        return list(self.head.parameters())

    def needs_prepare(self):
        return self.anchors is None

    def prepare(self, run):
        """Draw the anchors: `anchors` latents (0 = one per target image) from N(0, I), seeded by the run's seed."""
        count = self.num_anchors or len(run.images)
        gen = torch.Generator().manual_seed(anchor_seed(run.opts.seed))
        self.anchors = torch.randn([count, run.G.z_dim], generator=gen).to(run.device)

    def begin_batch(self, batch_idx):
        self.patch_step = batch_idx % self.anchor_every != 0

    def gen_latents(self, z):
        """Anchor steps: z [N, z_dim] -> latents near random anchors; patch steps: None (z as drawn)."""
        if self.patch_step:
            return None
        if self.anchors is None:
            raise RuntimeError('loss term cdc_patch: prepare(run) has not drawn the anchors')
        anchors = self.anchors.to(z.device)
        return anchors[torch.randint(len(anchors), [len(z)], device=z.device)] + self.anchor_std * torch.randn_like(z)

    def D_logits(self, D, img, c):
        """Patch steps: img [N, C, R, R] -> [N, h * w] patch logits of the head on D's `layer`; else None."""
        if not self.patch_step:
            return None
        with capture_outputs(D, [self.layer]) as outputs:
            D(img, c)
        features = outputs[self.layer].to(torch.float32, memory_format=torch.contiguous_format)
        return self.head(features * self.feature_gain).flatten(1)

    def state_dict(self):
        state = {}
        if self.anchors is not None:
            state['anchors'] = self.anchors.detach().cpu().clone()
        if self.head is not None:
            state['head'] = {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()}
        return state

    def load_state_dict(self, state):
        """Restore anchors and head in place (the head's tensors stay those D's optimiser holds)."""
        if 'anchors' in state:
            device = next(self.head.parameters()).device if self.head is not None else 'cpu'
            self.anchors = state['anchors'].to(device)
        if 'head' in state:
            if self.head is None:
                raise RuntimeError('loss term cdc_patch: attach(G, D) must build the head before its state loads')
            self.head.load_state_dict(state['head'])


register(LossTermSpec(name='cdc_patch', build=CDCPatch,
                      options=dict(anchors=0, anchor_every=4, anchor_std=0.1, layer=''),
                      description="CDC's anchors and patch-level D (Ojha et al. 2021): image-level D near the anchors "
                                  'every anchor_every steps, patch-level D on the D layer `layer` otherwise; any weight '
                                  '> 0 switches it on'))
