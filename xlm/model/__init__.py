"""The XLM Transformer (encoder for CLM/MLM/TLM, decoder with cross-attention for MT)."""

from xlm.model.transformer import IGNORE_INDEX, ModelConfig, ModelOutput, TransformerModel

__all__ = ["IGNORE_INDEX", "ModelConfig", "ModelOutput", "TransformerModel"]
