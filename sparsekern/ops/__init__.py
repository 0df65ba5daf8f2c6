"""The ops: numpy arrays in, float32 numpy arrays out, on the current backend.

Inputs that are not float32 C-contiguous are converted (a copy); no input array is
ever modified. Shapes follow numpy's ``matmul``, torch's ``linear`` and ``conv2d``.
"""
from __future__ import annotations

from ..formats._base import register_op
from .act import DeltaLinear
from .conv import conv2d, conv_output_size
from .linear import linear, matmul

register_op("matmul", matmul)      # W @ X

__all__ = ["matmul", "linear", "conv2d", "conv_output_size", "DeltaLinear"]
