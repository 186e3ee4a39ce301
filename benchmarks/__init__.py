"""The benchmark suite of issue 8: our pipeline against its peers and the hardware.

Run it with `make bench` (or `python -m benchmarks`); see benchmarks/README.md.
"""
