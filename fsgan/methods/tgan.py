"""TransferGAN (Wang et al., 2018): fine-tune every parameter of G and D."""
from .registry import MethodSpec, register


def apply(G, D):
    nets = [G] + ([D] if D is not None else [])
    return [p for net in nets for p in net.parameters()]


register(MethodSpec(
    name='tgan',
    apply=apply,
    description='fine-tune all G and D parameters (TransferGAN)',
    lr=0.002,
    update_w_avg=True,
))
