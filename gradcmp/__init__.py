"""gradcmp: do these gradients agree, and if not, who is wrong?

    report = gradcmp.compare("xy.csv", backends=["torch-grad", "jax-grad"])
    report.verdict        # "agree" | "disagree" | "inconclusive"
    report.to_dict()      # the JSON report

Importing gradcmp imports no framework (and not even numpy until the API is used, so that the
command line starts fast); a backend imports its own framework when it runs.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import compare
    from .judging.runner import Report, Result

try:
    __version__ = metadata.version("gradcmp")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Report", "Result", "__version__", "compare"]

_LAZY = {"compare": "api", "Report": "runner", "Result": "runner"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gradcmp' has no attribute {name!r}")
