"""Registered loss terms: weighted additions to the main G and/or D loss of training.loss.StyleGAN2Loss.

The core loss (non-saturating logistic loss, R1, path length) stays in training/loss.py; every other
term is one module here plus its registration line below. `--loss NAME=WEIGHT` (scripts/train.py) and
compare rows `METHOD@loss.NAME=WEIGHT` switch a term on; training_options.json records
`losses: {NAME: {weight, **options}}`.
"""
from .registry import LOSS_TERMS, LossTerm, LossTermSpec, build_loss_terms, get_loss_term, register, resolve_losses

from . import class_loss  # noqa: F401,E402  (registers 'class')
from . import mode_seeking  # noqa: F401,E402  (registers 'mode_seeking')
from . import ewc  # noqa: F401,E402  (registers 'ewc')
from . import cdc_dist, cdc_patch  # noqa: F401,E402  (registers 'cdc_dist', 'cdc_patch')

__all__ = ['LOSS_TERMS', 'LossTerm', 'LossTermSpec', 'build_loss_terms', 'get_loss_term', 'register',
           'resolve_losses']
