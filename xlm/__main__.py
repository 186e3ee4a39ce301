"""Allow `python -m xlm ...` (what the Snakemake rules call)."""

from xlm.cli import main

if __name__ == "__main__":
    main()
