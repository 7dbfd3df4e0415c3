"""`python benchmarks/gpu_check.py` runs `samgap bench gpu`: the CUDA checks of the paper profile's
code paths live in the installed package (samgap_lib.benchmarks.gpu_check)."""

import sys

from samgap_lib.benchmarks.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
