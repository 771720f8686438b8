"""EWC (Li et al., NeurIPS 2020, "Few-shot Image Generation with Elastic Weight Consolidation"): fine-tune every
G and D tensor, with the elastic weight consolidation penalty lambda * sum F (theta - theta_S)^2 on G
(fsgan/losses/ewc.py; lambda = 5e8, the paper's weight). `--loss ewc=LAMBDA` and `--loss ewc.samples=N` change it.
"""
from . import tgan
from .registry import MethodSpec, register

register(MethodSpec(
    name='ewc',
    apply=tgan.apply,
    description='fine-tune all G and D parameters, G held near the source by elastic weight consolidation '
                '(Li et al. 2020); --loss ewc=LAMBDA',
    lr=0.002,
    update_w_avg=True,
    losses={'ewc': 5e8},
))
