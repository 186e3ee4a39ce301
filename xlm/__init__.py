"""XLM: cross-lingual language model pretraining as a reproducible pipeline."""

__version__ = "0.1.0"
