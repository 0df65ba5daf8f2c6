"""sk.load of .npz files of act matrices.

The committed corpus holds valid files of each kind and dtype and a few corrupted ones;
_load.py has the mutator and the oracle."""
from __future__ import annotations

import sys

from _harness import fuzz_main
from _load import classify_file, mutate, test_one_input  # noqa: F401  (the interface)
from _seeds import act_seeds as seeds  # noqa: F401

if __name__ == "__main__":
    fuzz_main(sys.modules[__name__])
