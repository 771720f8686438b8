"""Small utilities shared by the whole project (EasyDict, URL open with cache)."""
from .util import EasyDict  # noqa: F401
