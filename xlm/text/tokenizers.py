"""One registry of per-language tokenizers, as the XLM paper prepared its data (5.2).

Every language first gets Moses' character normalisation (replace unicode punctuation,
normalise punctuation, remove non-printing characters). Then:
- Thai: PyThaiNLP word segmentation (`newmm`, dictionary-based, offline);
- Japanese: KyTea word segmentation with a model file;
- Chinese: jieba (the paper's Stanford segmenter needs Java and a download);
- everything else: the Moses tokenizer (sacremoses) with the language's rules, or
  English rules with a warning when Moses has none for it;
- Romanian additionally: s/t-comma normalisation and diacritic removal (XLM's MT recipe).
Optional lowercasing and accent removal come last (the XNLI-15 models used both).
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from re import _parser as sre_parser

from sacremoses import MosesPunctNormalizer, MosesTokenizer
from sacremoses.corpus import NonbreakingPrefixes

from xlm.errors import UserError

log = logging.getLogger(__name__)

Tokenizer = Callable[[str], str]
SEGMENTED_LANGUAGES = {"th", "ja", "zh"}


@dataclass(frozen=True)
class TokenizerOptions:
    """The settings that shape tokenized text (the `tokenize` section of the config)."""

    lowercase: bool = False
    remove_accents: bool = False
    romanian_normalize: bool = True
    romanian_remove_diacritics: bool = True
    kytea_model: str | None = None
    thai_engine: str = "newmm"
    chinese_segmenter: str = "jieba"


@lru_cache(maxsize=1)
def moses_languages() -> frozenset[str]:
    """ISO codes for which Moses (sacremoses) ships language-specific rules."""
    return frozenset(NonbreakingPrefixes().available_langs.values())


def moses_rules_for(lang: str) -> str:
    """The language whose Moses rules tokenize `lang`: itself, or English with a warning."""
    if lang in moses_languages():
        return lang
    log.warning("no Moses rules for language '%s': tokenizing it with English rules", lang)
    return "en"


def normalize_romanian(text: str) -> str:
    """Cedilla s/t to comma-below s/t (wmt16-scripts normalise-romanian.py)."""
    return text.translate(str.maketrans("\u015e\u015f\u0162\u0163", "\u0218\u0219\u021a\u021b"))


ROMANIAN_DIACRITICS = str.maketrans("\u0218\u0219\u021a\u021b\u0102\u0103\u00c2\u00e2\u00ce\u00ee",
                                    "SsTtAaAaIi")


def remove_romanian_diacritics(text: str) -> str:
    """ș ț ă â î to s t a a i (wmt16-scripts remove-diacritics.py)."""
    return text.translate(ROMANIAN_DIACRITICS)


def strip_accents(text: str) -> str:
    """Drop combining marks after NFD decomposition (XLM's lowercase_and_remove_accent)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def load_kytea(model_path: str | None):
    """A KyTea word segmenter from a model file (plain or gzipped)."""
    import Mykytea

    if not model_path:
        raise UserError("Japanese needs a KyTea model: pass --kytea-model FILE (.bin or "
                        ".bin.gz, e.g. demo/models/kytea-ja-tiny.bin.gz); in the workflow, "
                        "set tokenize.kytea_model")
    path = Path(model_path)
    if not path.is_file():
        raise UserError(f"{path}: KyTea model not found; fix --kytea-model (in the workflow, "
                        "tokenize.kytea_model)")
    if path.suffix != ".gz":
        return Mykytea.Mykytea(f"-model {path} -notags")
    # KyTea reads the whole model at start-up, so a gzipped one is unpacked to a
    # temporary file that is removed once loaded.
    with tempfile.NamedTemporaryFile(suffix=".bin") as unpacked:
        with gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, unpacked)
        unpacked.flush()
        return Mykytea.Mykytea(f"-model {unpacked.name} -notags")


@cache
def required_substring(pattern: str, replacement: str) -> str | None:
    """A substring every effective match of `pattern` contains, or None when unknown.

    It is the longest run of literal characters at the top level of the pattern (a
    concatenation, so every match holds it). `" +"` -> `" "` only changes text holding
    two spaces. The normalizer skips a substitution whose substring is absent, which
    cannot change its output, instead of paying a regex call for it.
    """
    if pattern == " +" and replacement == " ":
        return "  "
    try:
        parsed = sre_parser.parse(pattern)
    except re.error:  # a private parser: unknown means "always apply"
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    runs, run = [], ""
    for op, value in parsed:
        if op is sre_parser.LITERAL:
            run += chr(value)
        else:
            runs.append(run)
            run = ""
    runs.append(run)
    longest = max(runs, key=len)
    return longest or None


class FastPunctNormalizer:
    """sacremoses' MosesPunctNormalizer (unicode punctuation replaced first, control
    characters removed last), with the same output at a fraction of the cost.

    sacremoses runs ~80 `re.sub` calls per line, nearly all of which match nothing;
    here each substitution is compiled once and skipped when the text lacks a substring
    every match needs (`required_substring`).
    """

    def __init__(self, lang: str) -> None:
        self.base = MosesPunctNormalizer(
            lang=lang, pre_replace_unicode_punct=True, post_remove_control_chars=True)
        steps = self.base.REPLACE_UNICODE_PUNCTUATION + self.base.substitutions
        self.steps = [(re.compile(pattern), replacement, required_substring(pattern, replacement))
                      for pattern, replacement in steps]

    def normalize(self, text: str) -> str:
        for pattern, replacement, needed in self.steps:
            if needed is None or needed in text:
                text = pattern.sub(replacement, text)
        return self.base.remove_control_chars(text).strip()


class GuardedPattern:
    """A compiled regex whose `sub` returns the text untouched, without running the regex,
    when the text lacks a substring every match needs (`required_substring`)."""

    __slots__ = ("pattern", "needed")

    def __init__(self, pattern: re.Pattern, needed: str) -> None:
        self.pattern = pattern
        self.needed = needed

    def sub(self, replacement: str | Callable[[re.Match], str], text: str,
            count: int = 0) -> str:
        return self.pattern.sub(replacement, text, count) if self.needed in text else text


def _guarded(pair: tuple[re.Pattern, str]) -> tuple[re.Pattern | GuardedPattern, str]:
    needed = required_substring(pair[0].pattern, pair[1])
    return pair if needed is None else (GuardedPattern(pair[0], needed), pair[1])


def _is_rule(value: object) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], re.Pattern)
            and isinstance(value[1], str))


class FastMosesTokenizer(MosesTokenizer):
    """sacremoses' MosesTokenizer, same output, less work: its (regex, replacement) rules
    skip text that lacks a substring every match needs, and its character-class tests
    use sets built once (sacremoses builds a set of thousands of characters per call)."""

    def __init__(self, lang: str) -> None:
        super().__init__(lang=lang)
        self._lower = frozenset(self.IsLower)
        self._alpha = frozenset(self.IsAlpha)
        for name in dir(MosesTokenizer):
            value = getattr(MosesTokenizer, name)
            if _is_rule(value):
                setattr(self, name, _guarded(value))
            elif isinstance(value, list) and value and all(_is_rule(v) for v in value):
                setattr(self, name, [_guarded(v) for v in value])

    def replace_multidots(self, text: str) -> str:
        return super().replace_multidots(text) if ".." in text else text

    def restore_multidots(self, text: str) -> str:
        return super().restore_multidots(text) if "DOTMULTI" in text else text

    def islower(self, text: str) -> bool:
        return self._lower.issuperset(text)

    def isanyalpha(self, text: str) -> bool:
        return not self._alpha.isdisjoint(text)

    def handles_nonbreaking_prefixes(self, text: str) -> str:
        """sacremoses' loop, with its per-token regexes as string tests: `^(\\S+)\\.$` on a
        whitespace-free token is "ends with '.', longer than 1", `^[0-9]+` an ASCII digit."""
        tokens = text.split()
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            if len(token) < 2 or not token.endswith("."):
                continue
            prefix = token[:-1]
            if (("." in prefix and self.isanyalpha(prefix))
                    or (prefix in self.NONBREAKING_PREFIXES
                        and prefix not in self.NUMERIC_ONLY_PREFIXES)
                    or (i != last and tokens[i + 1] and self.islower(tokens[i + 1][0]))):
                continue
            if (prefix in self.NUMERIC_ONLY_PREFIXES and i < last
                    and tokens[i + 1][:1] in "0123456789" and tokens[i + 1][:1]):
                continue
            tokens[i] = prefix + " ."
        return " ".join(tokens)


def make_segmenter(lang: str, options: TokenizerOptions) -> Tokenizer:
    """Word segmentation for scripts written without spaces."""
    if lang == "th":
        from pythainlp.tokenize import word_tokenize

        engine = options.thai_engine
        return lambda text: " ".join(
            t for t in word_tokenize(text, engine=engine, keep_whitespace=False) if t.strip()
        )
    if lang == "ja":
        kytea = load_kytea(options.kytea_model)
        return lambda text: " ".join(t for t in kytea.getWS(text) if t.strip())
    if lang == "zh":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        return lambda text: " ".join(t for t in jieba.cut(text) if t.strip())
    raise ValueError(lang)


def get_tokenizer(lang: str, options: TokenizerOptions | None = None) -> Tokenizer:
    """Return a function from one raw line to one line of space-separated tokens."""
    options = options or TokenizerOptions()
    rules = lang if lang in SEGMENTED_LANGUAGES else moses_rules_for(lang)
    normalizer = FastPunctNormalizer(rules)
    steps: list[Tokenizer] = [normalizer.normalize]
    if lang == "ro" and options.romanian_normalize:
        steps.append(normalize_romanian)
    if lang == "ro" and options.romanian_remove_diacritics:
        steps.append(remove_romanian_diacritics)
    if lang in SEGMENTED_LANGUAGES:
        steps.append(make_segmenter(lang, options))
    else:
        moses = FastMosesTokenizer(rules)
        steps.append(lambda text: moses.tokenize(text, escape=False, return_str=True))
    if options.lowercase:
        steps.append(str.lower)
    if options.remove_accents:
        steps.append(strip_accents)

    def tokenize(line: str) -> str:
        for step in steps:
            line = step(line)
        return " ".join(line.split())

    return tokenize
