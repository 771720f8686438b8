"""Registry of training callbacks: work the training loop does on a schedule, modelled on fsgan.methods.registry.

A callback declares when it runs (`every`): 'step' (after every `interval`-th training step: batch_idx %
interval == 0, batch_idx counting the steps done), 'tick' (at the end of each tick, after its stats are
collected) or 'snapshot' (after a snapshot's files are written, before its checkpoint). It may hold state
(state_dict / load_state_dict of plain tensors and data): checkpoint.pt saves it under 'callbacks' and
--resume-run restores it.
"""
from dataclasses import dataclass
from typing import Callable

from dnnlib.registry import Registry

WHEN = ('step', 'tick', 'snapshot')


class Callback:
    """One callback of a run; subclasses set `every` (and `interval` for 'step') and implement __call__."""
    every = 'tick'
    interval = 1

    def __call__(self, state, opts, run_dir):
        """state: the training state (fsgan.training_loop.training_state), opts: the run's flat options, run_dir:
        the run folder (None in a method's probe, which runs step callbacks only)."""
        raise NotImplementedError

    def state_dict(self):
        """State to checkpoint: plain tensors and data ({} = nothing)."""
        return {}

    def load_state_dict(self, state):
        """Restore what state_dict returned."""


@dataclass(frozen=True)
class CallbackSpec:
    """A kind of callback."""
    name: str
    build: Callable             # build(opts, state) -> Callback, or None where this run does not use it
    description: str


CALLBACKS = Registry('training callback')


def register(spec: CallbackSpec) -> CallbackSpec:
    """Add a callback to the registry (one line per callback module)."""
    return CALLBACKS.register(spec)


def build_callbacks(opts, state):
    """{name: Callback} of every registered callback this run uses, in registration order."""
    built = {name: spec.build(opts, state) for name, spec in CALLBACKS.items()}
    for name, callback in built.items():
        assert callback is None or callback.every in WHEN, f'callback {name!r}: every={callback.every!r}'
    return {name: callback for name, callback in built.items() if callback is not None}


def run_callbacks(callbacks, when, state, opts, run_dir=None):
    """Run the callbacks due `when` ('step': those whose interval divides state.batch_idx), in order."""
    for callback in callbacks.values():
        if callback.every == when and (when != 'step' or state.batch_idx % callback.interval == 0):
            callback(state, opts, run_dir)


def callbacks_state(callbacks):
    """{name: state_dict} of the callbacks that hold state (for checkpoint.pt)."""
    return {name: s for name, s in ((n, c.state_dict()) for n, c in callbacks.items()) if s}


def load_callbacks_state(callbacks, saved):
    """Restore each callback's state from `saved` (checkpoint.pt's 'callbacks'; older checkpoints have none)."""
    for name, callback in callbacks.items():
        if name in saved:
            callback.load_state_dict(saved[name])
