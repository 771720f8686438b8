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

Facts come from the official code (utkarshojha/few-shot-gan-adaptation, train.py and model.py at their last
change of defaults: kl_wt 1000, feat_const_batch 4, subspace_freq 4, subspace_std 0.1, n_train 10, highp 1,
lr 0.002, batch 4, 5002 iterations, R1 10 every 16 steps, path length 2 every 4, style mixing 0.9); the paper's
text was not at hand to cross-check them. Where this implementation departs from that code, and why:

* Networks: stylegan2-ada-pytorch's instead of rosinality's (the layer mapping is in each term's docstring).
* Batch and G_ema follow --protocol, like every method here, so methods compare under one setting: `paper` gives
  batch 32 and a 10-kimg half-life; the official code uses batch 4 and a per-step decay 0.5^(32/10000), a
  half-life of 312.5 steps = 1.25 kimg at batch 4 (`--batch 4 --ema 1.25` gives that). Its 5002 steps of 4 images
  are the 20 kimg default; R1, path length and style mixing coincide.
* Start: the official code starts G from the checkpoint's raw G and G_ema from its G_ema; here both start from
  the generator --start names, as for every method.
* The consistency pass draws the noise once for both generators (the official code draws it separately for each),
  so the term measures the change of G alone and is exactly 0 while G equals the source.
* Cosine similarity through unit vectors (eps 1e-12 per norm; the official nn.CosineSimilarity clamps the product
  of norms at 1e-8) and log_softmax instead of log(softmax): equal except for vanishing features.
* One patch head, on the map the official code uses with its default highp = 1 (it builds four heads, of which
  only the first is ever used); `--loss cdc_patch.layer=NAME` picks another D conv.
* The head trains in D's optimiser (the official code gives it its own Adam with D's learning rate and betas;
  Adam keeps per-tensor state, so the updates are the same).
* Anchors come from a generator seeded by the run's seed (the official code uses the global RNG), so all processes
  of a multi-GPU run share them; one anchor per shot, as the official n_train is to be set.
* With --cond, the class term's logits stay image-level (the official code has no classes); with --aug ada, p
  counts the signs of every patch logit.
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
