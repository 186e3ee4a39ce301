"""`python -m benchmarks [NAME ...] [--quick]`: run benchmarks, write results and README."""

from benchmarks.run import main

if __name__ == "__main__":
    main()
