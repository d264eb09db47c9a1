"""Model adapters and batching (moving into submodules; see :mod:`clarion.models._base`)."""

from clarion.models._base import *  # noqa: F403
from clarion.models._base import __all__, __doc__  # noqa: F401
