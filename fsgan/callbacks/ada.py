"""Adaptive augmentation strength (ADA, Karras et al. 2020, Sec. 2.3) as a step callback.

Every `interval` steps (the ADA augment's, 4 by default) p moves by sign(r_t - target) x batch x interval /
(ada_kimg x 1000), r_t = E[sign(D(augmented real))] over those steps (training.augment.AdaAugment.adjust). The
state (p and the running sign sums) is the augment's buffers, checkpointed with it.
"""
from training.augment import AdaAugment

from .registry import Callback, CallbackSpec, register


class AdaptiveP(Callback):
    every = 'step'

    def __init__(self, interval):
        self.interval = int(interval)

    def __call__(self, state, opts, run_dir):
        state.augment.adjust(opts.batch * self.interval)


def build(opts, state):
    """The callback where the run augments with ADA at an adaptive p (a target), else None."""
    augment = state.augment
    if isinstance(augment, AdaAugment) and augment.target is not None:
        return AdaptiveP(augment.interval)
    return None


register(CallbackSpec(name='ada_p', build=build, description='ADA: adapt the augmentation strength p to '
                      'D\'s overfitting'))
