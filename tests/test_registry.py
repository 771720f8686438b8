"""dnnlib.registry.Registry: the one shape of the method, loss-term, augmentation and callback registries."""
from dataclasses import dataclass, field

import pytest

from dnnlib.registry import Registry


@dataclass(frozen=True)
class Spec:
    name: str
    options: dict = field(default_factory=dict)


def test_register_lookup_and_option_defaults():
    reg = Registry('widget')
    assert reg.register(Spec('b', {'size': 1})) == Spec('b', {'size': 1})
    reg.register(Spec('a'))
    assert list(reg) == ['b', 'a']                                    # registration order is kept
    assert reg.lookup('a') == Spec('a')
    assert reg.with_defaults('b', {}) == {'size': 1}
    assert reg.with_defaults('b', {'size': 3}) == {'size': 3}


def test_errors_name_what_is_registered():
    reg = Registry('adaptation method', label='Method')
    reg.register(Spec('fsgan', {'adapt_torgb': False}))
    reg.register(Spec('tgan'))
    with pytest.raises(ValueError, match=r"Unknown adaptation method 'x'; choose one of: fsgan, tgan"):
        reg.lookup('x')
    with pytest.raises(ValueError, match=r"Method 'fsgan' has no option\(s\) rank; its options are: adapt_torgb"):
        reg.with_defaults('fsgan', {'rank': 2})
    with pytest.raises(ValueError, match=r"its options are: none"):
        reg.with_defaults('tgan', {'rank': 2})
    with pytest.raises(AssertionError, match="registered twice"):
        reg.register(Spec('tgan'))
    assert Registry('loss term').label == 'Loss term'
