"""Intermediate outputs of G and D by submodule name, through forward hooks.

The networks keep their module hierarchy, parameter names and embedded source (what NVIDIA's loader reads):
a hook is registered on the named submodules only for the duration of one `with` block and removed after it,
so nothing of it reaches a pickle, a state dict or a deepcopy.
"""
import contextlib


@contextlib.contextmanager
def capture_outputs(net, names):
    """Within the block, every forward of `net` stores the output of each submodule in `names` (as named by
    net.named_modules(), e.g. 'synthesis.b8.conv0' or 'b64.conv1') in the yielded dict {name: tensor}; a later
    forward replaces an earlier one. The tensors keep their autograd graph. ValueError names unknown modules."""
    modules = dict(net.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ValueError(f'{type(net).__name__} has no submodule(s) {", ".join(unknown)}')
    outputs = {}

    def hook_for(name):
        def hook(_module, _inputs, output):
            outputs[name] = output
        return hook
    handles = [modules[n].register_forward_hook(hook_for(n)) for n in dict.fromkeys(names)]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
