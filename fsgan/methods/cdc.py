"""CDC (Ojha et al., CVPR 2021, "Few-shot Image Generation via Cross-domain Correspondence"): fine-tune every
tensor of G and D, with two loss terms the method brings (fsgan.losses):

* `cdc_dist` (weight 1000): cross-domain distance consistency against the frozen source G, at a random synthesis
  layer per sample (every conv but the 4x4 one; fsgan/losses/cdc_dist.py maps rosinality's feature indices to
  synthesis.b{r}.conv0 / conv1);
* `cdc_patch` (switch): latents near a few anchors every 4th step with the image-level D, a patch-level D (a
  3x3 conv head on D's b64.conv1 output, the official 32x32 map) on the other steps (fsgan/losses/cdc_patch.py).

Learning rate 0.002 for G, D and the head (official code). What the method keeps besides its trainable tensors:
the source G copy (the source network, loaded again on resume), the anchors and the patch head (both in
checkpoint.pt). Snapshots are plain stylegan2-ada-pytorch pickles of G, D, G_ema and adapter files hold their
trained tensors; neither holds the head, the anchors or the source copy, which only training uses.
"""
from .registry import MethodSpec, register


def apply(G, D):
    nets = [G] + ([D] if D is not None else [])
    return [p for net in nets for p in net.parameters()]


register(MethodSpec(
    name='cdc',
    apply=apply,
    description='fine-tune G and D with cross-domain distance consistency and anchor/patch-level D (CDC)',
    lr=0.002,
    update_w_avg=True,
    losses={'cdc_dist': 1000.0, 'cdc_patch': 1.0},
))
