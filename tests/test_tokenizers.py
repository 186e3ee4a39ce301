"""Each tokenizer on real sentences (FLORES-200 devtest line 3, WMT'16 Romanian), with
expected tokens checked by hand against the rules of Moses and each segmenter."""

from __future__ import annotations

import logging

import pytest

from xlm.text.tokenizers import TokenizerOptions, get_tokenizer, strip_accents


def flores(shared_data, lang: str, line: int = 3) -> str:
    path = shared_data / "para" / "flores200" / f"devtest.{lang}"
    return path.read_text(encoding="utf-8").split("\n")[line - 1]


@pytest.fixture(scope="module")
def options(shared_data) -> TokenizerOptions:
    return TokenizerOptions(kytea_model=str(shared_data / "models" / "kytea-ja-tiny.bin.gz"))


def test_english_moses(shared_data, options):
    tokens = get_tokenizer("en", options)(flores(shared_data, "en")).split()
    assert tokens[:5] == ["Like", "some", "other", "experts", ","]
    assert tokens[-4:] == ["Type", "1", "diabetes", "."]
    assert get_tokenizer("en", options)("It's \"quoted\" — isn't it?") == (
        "It 's \" quoted \" - isn 't it ?"  # unicode dash normalised, no &quot; escaping
    )


def test_french_moses_splits_elision(shared_data, options):
    tokens = get_tokenizer("fr", options)(flores(shared_data, "fr")).split()
    assert tokens[:5] == ["À", "l'", "instar", "d'", "autres"]
    assert tokens[-3:] == ["type", "1", "."]


def test_romanian_diacritics_removed_as_xlm(shared_data, options):
    wmt = (shared_data / "mt" / "wmt16-en-ro" / "newstest2016.ro").read_text(encoding="utf-8")
    line = wmt.split("\n")[4]
    assert "ș" in line and "„" in line
    assert get_tokenizer("ro", options)(line) == (
        'Ban si-a exprimat regretul ca divizarile in consiliu si intre poporul sirian si '
        'puterile regionale " au facut aceasta situatie de nerezolvat " .'
    )
    keep = TokenizerOptions(romanian_remove_diacritics=False)
    assert get_tokenizer("ro", keep)("Şeful ţării") == "Șeful țării"  # cedilla -> comma


def test_thai_pythainlp(shared_data, options):
    tokens = get_tokenizer("th", options)(flores(shared_data, "th")).split()
    assert tokens[:6] == ["เขา", "ก็", "เหมือนกับ", "ผู้เชี่ยวชาญ", "คนอื่น", "ๆ"]
    assert "โรคเบาหวาน" in tokens


def test_japanese_kytea(shared_data, options):
    tokens = get_tokenizer("ja", options)(flores(shared_data, "ja")).split()
    assert tokens[:6] == ["他", "の", "専門", "家", "たち", "と"]
    assert tokens[-1] == "."  # Moses maps the ideographic full stop


def test_chinese_jieba(shared_data, options):
    tokens = get_tokenizer("zh", options)(flores(shared_data, "zh")).split()
    assert tokens[:6] == ["和", "其他", "一些", "专家", "一样", ","]
    assert "糖尿病" in tokens


def test_language_without_moses_rules_falls_back_to_english(caplog):
    with caplog.at_level(logging.WARNING):
        tokenized = get_tokenizer("ne")("नेपाल एक देश हो।")
    assert tokenized == "नेपाल एक देश हो ।"
    assert "no Moses rules for language 'ne'" in caplog.text


def test_lowercase_and_accent_removal():
    options = TokenizerOptions(lowercase=True, remove_accents=True)
    assert get_tokenizer("fr", options)("L'Élève a mangé.") == "l' eleve a mange ."
    assert strip_accents("ñandú") == "nandu"


def test_missing_kytea_model_is_one_clear_error():
    from xlm.errors import UserError

    with pytest.raises(UserError, match="nowhere.bin.gz: KyTea model not found"):
        get_tokenizer("ja", TokenizerOptions(kytea_model="nowhere.bin.gz"))


def test_japanese_without_a_model_names_the_command_line_flag(tmp_path, capsys):
    """`xlm tokenize --lang ja` run by hand: the fix is a flag, not a config key."""
    from xlm.cli import main

    (tmp_path / "in.txt").write_text("日本語の文です。\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        main(["tokenize", "--lang", "ja", "--input", str(tmp_path / "in.txt"), "--output",
              str(tmp_path / "out.txt")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "pass --kytea-model FILE" in error[0], error
    assert not (tmp_path / "out.txt").exists()
