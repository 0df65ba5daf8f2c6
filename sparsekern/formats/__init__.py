"""Packed formats: immutable objects over plain numpy arrays, with pack/save/load.

``_base`` holds what every format shares (PackedMatrix, the registry, validation and
storage); one module per format registers itself. Nothing here imports the backends or
the ops.
"""
from __future__ import annotations

from ._base import PackedMatrix, _rebuild, load, pack, register_format, save
from .unstructured import UnstructuredMatrix, magnitude_mask
from .nm import NMMatrix, nm_mask, parse_pattern
from .act import ActMatrix, column_norms
from .conv import ConvWeight

__all__ = ["PackedMatrix", "UnstructuredMatrix", "NMMatrix", "ActMatrix", "ConvWeight",
           "pack", "save", "load", "register_format", "nm_mask", "magnitude_mask",
           "parse_pattern", "column_norms"]

# Pickles name the rebuild function by module: keep that name independent of the layout
# of this package (pickles written by earlier versions name it here too).
_rebuild.__module__ = __name__
