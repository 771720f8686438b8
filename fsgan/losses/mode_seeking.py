"""Mode seeking (Mao et al. 2019, "Mode Seeking Generative Adversarial Networks"), a G term against
generators that ignore their latents (small from-scratch networks collapse without it)."""
from .registry import LossTerm, LossTermSpec, register


def pair_distance(img):
    """img [N, C, H, W] -> [N // 2] mean |img1 - img2| of the pairs (first half, second half)."""
    half = img.shape[0] // 2
    return (img[:half] - img[half:2 * half]).abs().flatten(1).mean(1)


def mode_seeking_loss(img, z, eps=1e-5, ref=None):
    """Pairs (first half, second half) of img [N, C, H, W] and their latents z [N, z_dim]:
    1 / (mean |img1 - img2| / mean |z1 - z2|), averaged over pairs (a 0-dim tensor).

    Small when different latents give different images; grows as the generator collapses. It never
    stops rewarding larger image distances, so it also pushes samples to differ more than real images
    do. With ref (the mean pair distance of a real batch, a scalar) each pair's term is reduced by its
    value at that distance and clamped at 0: pairs at least as far apart as real pairs cost nothing.
    (A batch drawn from K shots with replacement repeats images, which lowers ref by about 1/K.)
    """
    d_img = pair_distance(img)
    half = d_img.shape[0]
    d_z = (z[:half] - z[half:2 * half]).abs().mean(1)
    term = 1 / (d_img / d_z + eps)
    if ref is not None:
        term = (term - 1 / (ref / d_z + eps)).clamp(min=0)
    return term.mean()


class ModeSeeking(LossTerm):
    """mode_seeking_loss of G's main-phase samples; hinge: at the real batch's mean pair distance."""
    phases = frozenset({'G'})
    stat = 'ms'

    def __init__(self, weight, hinge=False):
        super().__init__(weight)
        self.hinge = bool(hinge)

    def G_value(self, ctx):
        if ctx.gen_z.shape[0] < 2:
            return None
        ref = pair_distance(ctx.real_img.detach()).mean() if self.hinge else None
        return mode_seeking_loss(ctx.gen_img, ctx.gen_z, ref=ref)


register(LossTermSpec(name='mode_seeking', build=ModeSeeking, options=dict(hinge=False),
                      description='mode seeking (Mao et al. 2019); hinge=true: only pairs closer than real pairs'))
