"""Registered training callbacks (fsgan.callbacks.registry): work done every few steps, at each tick or at each
snapshot, with state saved in checkpoint.pt. Each callback is one module here plus its registration line below."""
from .registry import (CALLBACKS, WHEN, Callback, CallbackSpec, build_callbacks, callbacks_state,
                       load_callbacks_state, register, run_callbacks)

from . import ada  # noqa: F401,E402  (registers 'ada_p')
from . import snapshot_metrics  # noqa: F401,E402  (registers 'snapshot_metrics')

__all__ = ['CALLBACKS', 'WHEN', 'Callback', 'CallbackSpec', 'build_callbacks', 'callbacks_state',
           'load_callbacks_state', 'register', 'run_callbacks']
