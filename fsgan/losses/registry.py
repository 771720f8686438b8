"""Registry of loss terms, modelled on fsgan.methods.registry."""
from dataclasses import dataclass, field
from typing import Callable, Dict

from dnnlib.registry import Registry


class LossTerm:
    """One weighted term of the main G and/or D loss.

    Subclasses set `phases` (a subset of {'G', 'D'}), `stat` (the name in stats: Loss/G/<stat>, and the
    returned loss 'G<stat>' / 'D<stat>') and `needs_class_logits` (D's logits of every class are computed
    for the term; training.loss passes their cross-entropy), and implement G_value / D_value. Each returns
    a tensor ([N] per sample, or a 0-dim mean) whose mean times `weight` joins the loss, or None to skip
    this batch. Terms with state keep it in state_dict() (saved in checkpoint.pt, restored on resume).

    A term whose state must be computed from the run (e.g. a Fisher diagonal of the source) does it in
    prepare(run): the loop calls it once the networks are adapted and any checkpoint is restored, and only
    while needs_prepare() is true, so a resumed run never recomputes restored state.

    A term may also change the adversarial game for some batches instead of adding a value (then `phases` may
    be empty): see attach, begin_batch, gen_latents and D_logits below (CDC's anchors and patch-level D).
    """
    phases = frozenset()
    stat = ''
    needs_class_logits = False

    def __init__(self, weight):
        self.weight = float(weight)

    def G_value(self, ctx):
        """ctx: gen_img [N, C, R, R], gen_z [N, z_dim], gen_c [N, c_dim], real_img, gen_ce [N] or None, and the
        networks being trained G and D."""
        raise NotImplementedError

    def D_value(self, ctx):
        """ctx: real_img [N, C, R, R], real_c [N, c_dim], real_ce [N] or None."""
        raise NotImplementedError

    def needs_prepare(self):
        """True while prepare() has state to compute (never, for stateless terms)."""
        return False

    def prepare(self, run):
        """run: EasyDict(G, D, G_ema (adapted, on the device), source (the loaded source network dict, or
        None from scratch), images (uint8 targets [N, C, R, R] on the CPU), device, opts)."""

    # Hooks into the adversarial game itself (all optional; the defaults leave it as it is).

    def attach(self, G, D):
        """Called once on the adapted networks, before the optimisers exist: returns extra tensors that D's
        optimiser trains with D (e.g. a head on a D feature map; kept in state_dict(), never in D)."""
        return []

    def begin_batch(self, batch_idx):
        """Called before each training step with the number of steps done so far (0 first)."""

    def gen_latents(self, z):
        """z [N, z_dim] drawn for a main phase's fakes -> replacement latents [N, z_dim] for this batch (used as
        they are, without style mixing), or None to keep z."""
        return None

    def D_logits(self, D, img, c):
        """D's logits for this batch instead of D(img, c): [N, K] (K logits per image, each taken through the
        logistic loss, R1 on their mean), or None to keep D's own. img [N, C, R, R] is already augmented."""
        return None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        assert not state, f'loss term {self.stat!r} keeps no state, got {sorted(state)}'


@dataclass(frozen=True)
class LossTermSpec:
    """A loss term and how to build it."""
    name: str
    build: Callable             # build(weight, **options) -> LossTerm
    description: str
    options: Dict[str, object] = field(default_factory=dict)  # option name -> default


LOSS_TERMS = Registry('loss term')


def register(spec: LossTermSpec) -> LossTermSpec:
    """Add a loss term to the registry (one line per term module)."""
    return LOSS_TERMS.register(spec)


def get_loss_term(name: str) -> LossTermSpec:
    """Look up a term by name; the error lists what is registered."""
    return LOSS_TERMS.lookup(name)


def resolve_losses(losses):
    """{name: weight or {weight, **options}} -> {name: {weight, **options}} with every option filled in and
    checked; terms of weight 0 are dropped. ValueError names the term and what is wrong."""
    out = {}
    for name, entry in (losses or {}).items():
        spec = get_loss_term(name)
        entry = dict(entry) if isinstance(entry, dict) else dict(weight=entry)
        weight = float(entry.pop('weight', 0.0))
        if not weight >= 0 or weight == float('inf'):
            raise ValueError(f'loss term {name}: weight must be a finite number >= 0, got {weight}')
        unknown = sorted(set(entry) - set(spec.options))
        if unknown:
            raise ValueError(f'loss term {name} has no option(s) {", ".join(unknown)}; '
                             f'its options are: {", ".join(sorted(spec.options)) or "none"}')
        if weight > 0:
            out[name] = dict(weight=weight, **{k: _typed(name, k, entry.get(k, v), v) for k, v in spec.options.items()})
            spec.build(**out[name])  # the term's own checks of its option values (ValueError)
    return out


_SWITCHES = {'true': True, '1': True, 'yes': True, 'on': True, 'false': False, '0': False, 'no': False, 'off': False}


def _typed(term, key, value, default):
    """value converted to the type of the option's default; ValueError names the term and option."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _SWITCHES:
            return _SWITCHES[str(value).strip().lower()]
        raise ValueError(f'loss term {term}: {key} must be true or false, got {value!r}')
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ValueError(f'loss term {term}: {key} must be a {type(default).__name__}, got {value!r}') from None


def build_loss_terms(losses):
    """Resolved {name: {weight, **options}} -> [LossTerm] in registry order (a fixed summation order)."""
    losses = resolve_losses(losses)
    return [LOSS_TERMS[name].build(**losses[name]) for name in LOSS_TERMS if name in losses]
