"""gradcmp: do these gradients agree, and if not, who is wrong?"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("gradcmp")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
