"""avo_bench: a benchmark of likelihood-free inference on non-differentiable simulators."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
