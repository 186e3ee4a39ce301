"""The languages the tokenizers have rules for, importable without loading them.

The workflow checks the configured languages at every start-up; importing sacremoses'
tokenizer (which compiles its rules) would add about a second to each start, also inside
every cluster job. tests/test_config.py checks these sets against xlm/text/tokenizers.py
and the pinned sacremoses.
"""

from __future__ import annotations

# Languages with Moses rules of their own in sacremoses 0.2.0 (NonbreakingPrefixes).
MOSES_LANGUAGES = frozenset({
    "as", "bn", "ca", "cs", "de", "el", "en", "es", "et", "fi", "fr", "ga", "gu", "hi", "hu",
    "is", "it", "kn", "lt", "lv", "ml", "mni", "mr", "nl", "or", "pa", "pl", "pt", "ro", "ru",
    "sk", "sl", "sv", "ta", "tdt", "te", "yue", "zh",
})
# Word segmenters for scripts written without spaces (Thai, Japanese, Chinese).
SEGMENTED_LANGUAGES = frozenset({"th", "ja", "zh"})
