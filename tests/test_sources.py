"""Corpora as distributed, served over real HTTP on loopback: archive members in the real
layouts (OPUS Moses zip, IIT Bombay tgz, XNLI zip, WMT SGML tgz), the sha256 lock, the
resumed transfer of an archive, seeded splits of a corpus given whole."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from httpserver import serve

from xlm.errors import UserError
from xlm.text.download import download, read_lock
from xlm.text.sources import concat_text, extract_member, split_pair


def head(path: Path, n: int) -> bytes:
    """The first n lines of a (gzip) text file, as bytes."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return "".join(itertools.islice(handle, n)).encode("utf-8")


def opus_zip(path: Path, corpus: str, pair: str, sides: dict[str, bytes]) -> Path:
    """An OPUS Moses-format zip: {corpus}.{pair}.{lang} per side, README and LICENSE."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("README", f"{corpus} {pair} (OPUS)\n")
        bundle.writestr("LICENSE", "see OPUS\n")
        for lang, data in sides.items():
            bundle.writestr(f"{corpus}.{pair}.{lang}", data)
    return path


def tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


def sgm(text: bytes, lang: str) -> bytes:
    """WMT's SGML layout: one <seg> per sentence inside a document."""
    segs = [f'<seg id="{i}">{line}</seg>' for i, line in
            enumerate(text.decode("utf-8").splitlines(), 1)]
    return ("<refset setid=\"newstest2014\" srclang=\"any\" trglang=\"" + lang + "\">\n"
            "<doc sysid=\"ref\" docid=\"1\" genre=\"news\" origlang=\"en\">\n"
            + "\n".join(segs) + "\n</doc>\n</refset>\n").encode("utf-8")


@pytest.fixture()
def corpora(tmp_path, shared_data):
    """Archives built from ../shared/data in the layouts the presets name."""
    root = tmp_path / "mirror"
    root.mkdir()
    para = shared_data / "study" / "para"
    en_fr = {lang: head(para / "tatoeba" / f"en-fr.{lang}.gz", 300) for lang in ("en", "fr")}
    en_hi = {lang: head(para / "libreoffice" / f"en-hi.{lang}.gz", 200) for lang in ("en", "hi")}
    wmt = (shared_data / "mt" / "wmt14-en-fr" / "newstest2014.fr").read_bytes()
    wmt = b"".join(wmt.splitlines(keepends=True)[:40])
    opus_zip(root / "en-fr.txt.zip", "MultiUN", "en-fr", en_fr)
    tgz(root / "parallel.tgz", {f"parallel/IITB.en-hi.{lang}": data
                                for lang, data in en_hi.items()})
    tgz(root / "dev.tgz", {"dev/newstest2014-fren-ref.fr.sgm": sgm(wmt, "fr")})
    return root, en_fr, en_hi, wmt


def test_members_of_a_zip_a_tgz_and_sgml(corpora, tmp_path):
    root, en_fr, en_hi, wmt = corpora
    out = tmp_path / "out"
    extract_member(root / "en-fr.txt.zip", "MultiUN.en-fr.fr", out / "fr")
    extract_member(root / "parallel.tgz", "parallel/IITB.en-hi.hi", out / "hi")
    lines = extract_member(root / "dev.tgz", "dev/newstest2014-fren-ref.fr.sgm", out / "sgm")
    assert (out / "fr").read_bytes() == en_fr["fr"]
    assert (out / "hi").read_bytes() == en_hi["hi"]
    assert lines == 40 and (out / "sgm").read_bytes() == wmt  # segments, tags stripped
    assert sorted(p.name for p in out.iterdir()) == ["fr", "hi", "sgm"]  # no temporaries


def test_missing_member_is_one_line_listing_the_archive(corpora, tmp_path):
    root = corpora[0]
    result = subprocess.run(
        [sys.executable, "-m", "xlm", "extract-member", "--archive", str(root / "en-fr.txt.zip"),
         "--member", "MultiUN.en-fr.de", "--output", str(tmp_path / "de"),
         "--label", "https://object.pouta.csc.fi/OPUS-MultiUN/v1/moses/en-fr.txt.zip"],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: https://object.pouta.csc.fi/OPUS-MultiUN/v1/moses/en-fr.txt.zip: no member "
        "'MultiUN.en-fr.de' (closest: MultiUN.en-fr.en, MultiUN.en-fr.fr); fix the name "
        "after '#' in the config")
    assert not (tmp_path / "de").exists()
    with pytest.raises(UserError, match=r"no member 'IITB.en-hi.hi' \(closest: parallel/IITB"):
        extract_member(root / "parallel.tgz", "IITB.en-hi.hi", tmp_path / "hi")
    with pytest.raises(UserError, match="not a zip or tar archive"):
        news = tmp_path / "news.2007.en.shuffled.gz"
        news.write_bytes(gzip.compress(b"a line\n"))
        extract_member(news, "news.2007.en.shuffled", tmp_path / "x")


def test_first_download_pins_sha256_and_a_changed_archive_is_refused(corpora, tmp_path):
    root = corpora[0]
    lock = tmp_path / "configs" / "preset.lock"
    with serve(root) as (url, _):
        download(f"{url}/en-fr.txt.zip", tmp_path / "a.zip", None, retries=1, lock=lock)
        digest = hashlib.sha256((root / "en-fr.txt.zip").read_bytes()).hexdigest()
        assert read_lock(lock) == {f"{url}/en-fr.txt.zip": digest}
        download(f"{url}/en-fr.txt.zip", tmp_path / "b.zip", None, retries=1, lock=lock)
        opus_zip(root / "en-fr.txt.zip", "MultiUN", "en-fr", {"en": b"x\n", "fr": b"y\n"})
        with pytest.raises(UserError, match="changed upstream") as error:
            download(f"{url}/en-fr.txt.zip", tmp_path / "c.zip", None, retries=1, lock=lock)
    assert "\n" not in str(error.value) and str(lock) in str(error.value)
    assert (tmp_path / "b.zip").read_bytes() == (tmp_path / "a.zip").read_bytes()
    assert not (tmp_path / "c.zip").exists() and not (tmp_path / "c.zip.part").exists()
    assert read_lock(lock) == {f"{url}/en-fr.txt.zip": digest}  # the pin is kept


def test_interrupted_archive_download_resumes_then_is_pinned(corpora, tmp_path):
    root = corpora[0]
    size = (root / "parallel.tgz").stat().st_size
    lock = tmp_path / "x.lock"
    with serve(root, cut_after={"parallel.tgz": size // 2}) as (url, requests):
        download(f"{url}/parallel.tgz", tmp_path / "p.tgz", None, retries=3, backoff=0,
                 lock=lock)
    assert [rng for name, rng in requests if name == "parallel.tgz"] == [None,
                                                                          f"bytes={size // 2}-"]
    assert (tmp_path / "p.tgz").read_bytes() == (root / "parallel.tgz").read_bytes()
    assert list(read_lock(lock).values()) == [
        hashlib.sha256((root / "parallel.tgz").read_bytes()).hexdigest()]


def test_split_pair_keeps_sides_aligned_and_is_seeded(corpora, tmp_path):
    _, en_fr, _, _ = corpora
    sides = {}
    for lang, data in en_fr.items():  # two corpora per side, joined (as Tanzil + GlobalVoices)
        lines = data.splitlines(keepends=True)
        (tmp_path / f"a.{lang}").write_bytes(b"".join(lines[:100]))
        (tmp_path / f"b.{lang}.gz").write_bytes(gzip.compress(b"".join(lines[100:])))
        sides[lang] = [tmp_path / f"a.{lang}", tmp_path / f"b.{lang}.gz"]

    def run(seed: int, folder: str) -> dict[str, dict[str, list[str]]]:
        outputs = {split: {lang: tmp_path / folder / f"{split}.{lang}" for lang in sides}
                   for split in ("train", "valid", "test")}
        sizes = split_pair(sides, outputs, "parallel.pairs.en-fr.all", 20, 30, 0.5, seed)
        assert sizes == {"train": 250, "valid": 20, "test": 30}
        return {split: {lang: path.read_text().splitlines() for lang, path in files.items()}
                for split, files in outputs.items()}

    first, again, other = run(42, "a"), run(42, "b"), run(7, "c")
    assert first == again and first["valid"] != other["valid"]
    pairs = set(zip(en_fr["en"].decode().splitlines(), en_fr["fr"].decode().splitlines(),
                    strict=True))
    for split in first.values():  # every (en, fr) line pair is one of the corpus's pairs
        assert set(zip(split["en"], split["fr"], strict=True)) <= pairs
    assert sum(len(split["en"]) for split in first.values()) == 300
    joined = concat_text(sides["fr"], tmp_path / "fr.txt")
    assert joined == 300 and (tmp_path / "fr.txt").read_bytes() == en_fr["fr"]
    (tmp_path / "b.fr.gz").write_bytes(gzip.compress(b"one line too few\n"))
    with pytest.raises(UserError, match=r"key 'parallel.pairs.en-fr.all': the sides are not "
                                        r"line-aligned \(en 300 lines, fr 101 lines\)"):
        split_pair(sides, {s: {lang: tmp_path / f"{s}.{lang}" for lang in sides}
                           for s in ("train", "valid", "test")}, "parallel.pairs.en-fr.all",
                   20, 30, 0.5, 0)
