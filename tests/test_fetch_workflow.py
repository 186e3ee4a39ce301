"""The presets' structure with its sources served over real HTTP on loopback: Snakemake
downloads the archives (OPUS zips, XNLI zips, a WMT SGML tgz, News-Crawl-style gz),
takes their members out and builds the same binarized data as the same files given
locally; the lock records every download; `-n download` lists what it will fetch."""

from __future__ import annotations

import gzip
import itertools
import zipfile
from pathlib import Path

from httpserver import serve
from test_sources import opus_zip, sgm, tgz
from workflow import snakemake, tiny_pipeline_config, write_config

from xlm.text.download import read_lock


def lines(path: Path, n: int, start: int = 0) -> bytes:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return "".join(itertools.islice(handle, start, start + n)).encode("utf-8")


def xnli_zip_rows(shared_data: Path, split: str, langs: list[str], n: int) -> str:
    """XNLI 1.0's all-language TSV layout (language, gold_label, ..., sentence1, sentence2)
    from the per-language files of ../shared/data."""
    header = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID",
              "pairID", "genre", "label1", "label2", "label3", "label4", "label5",
              "sentence1_tokenized", "sentence2_tokenized", "match"]
    rows = ["\t".join(header)]
    for lang in langs:
        text = lines(shared_data / "xnli" / f"{split}.{lang}.tsv.gz", n + 1).decode()
        for number, row in enumerate(text.splitlines()[1:]):
            premise, hypothesis, label = row.split("\t")
            rows.append("\t".join([lang, label, "", "", "", "", premise, hypothesis,
                                   str(number), str(number), "news", label, label, label,
                                   label, label, premise, hypothesis, "True"]))
    return "\n".join(rows) + "\n"


def build_mirror(root: Path, shared_data: Path) -> dict[str, bytes]:
    """Archives as the presets' URLs serve them; returns each member's plain content."""
    para = shared_data / "study" / "para"
    plain = {
        "multiun.en": lines(para / "tatoeba" / "en-fr.en.gz", 150),
        "multiun.fr": lines(para / "tatoeba" / "en-fr.fr.gz", 150),
        "gv.en": lines(para / "libreoffice" / "en-fr.en.gz", 100),
        "gv.fr": lines(para / "libreoffice" / "en-fr.fr.gz", 100),
        "news2007.en": lines(shared_data / "study" / "mono" / "libreoffice" / "en.txt.gz", 150),
        "news2008.en": lines(shared_data / "study" / "mono" / "libreoffice" / "en.txt.gz", 150,
                             start=150),
        "news2009.fr": lines(shared_data / "study" / "mono" / "libreoffice" / "fr.txt.gz", 300),
    }
    mt = shared_data / "mt" / "wmt14-en-fr"
    for lang in ("en", "fr"):
        plain[f"newstest2014.{lang}"] = b"".join(
            (mt / f"newstest2014.{lang}").read_bytes().splitlines(keepends=True)[:30])
    plain["multinli.train.en.tsv"] = ("premise\thypo\tlabel\n" + "".join(
        row.replace("\tcontradiction", "\tcontradictory") + "\n" for row in
        lines(shared_data / "study" / "nli" / "snli.dev.tsv.gz", 120, 1).decode().splitlines()
    )).encode("utf-8")
    for split in ("dev", "test"):
        plain[f"xnli.{split}.tsv"] = xnli_zip_rows(shared_data, split, ["en", "fr", "de"],
                                                   40).encode("utf-8")
    opus = root / "OPUS-MultiUN" / "v1" / "moses"
    opus.mkdir(parents=True)
    opus_zip(opus / "en-fr.txt.zip", "MultiUN", "en-fr",
             {lang: plain[f"multiun.{lang}"] for lang in ("en", "fr")})
    gv = root / "OPUS-GlobalVoices" / "v2018q4" / "moses"
    gv.mkdir(parents=True)
    opus_zip(gv / "en-fr.txt.zip", "GlobalVoices", "en-fr",
             {lang: plain[f"gv.{lang}"] for lang in ("en", "fr")})
    with zipfile.ZipFile(root / "XNLI-1.0.zip", "w") as bundle:
        bundle.writestr("XNLI-1.0/README.md", "XNLI 1.0\n")
        for split in ("dev", "test"):
            for ext in ("tsv", "jsonl"):
                bundle.writestr(f"XNLI-1.0/xnli.{split}.{ext}", plain[f"xnli.{split}.tsv"])
    with zipfile.ZipFile(root / "XNLI-MT-1.0.zip", "w") as bundle:
        bundle.writestr("XNLI-MT-1.0/multinli/multinli.train.en.tsv",
                        plain["multinli.train.en.tsv"])
    tgz(root / "dev.tgz", {f"dev/newstest2014-fren-ref.{lang}.sgm":
                           sgm(plain[f"newstest2014.{lang}"], lang) for lang in ("en", "fr")})
    for name, key in (("news.2007.en.shuffled.gz", "news2007.en"),
                      ("news.2008.en.shuffled.gz", "news2008.en"),
                      ("news.2009.fr.shuffled.gz", "news2009.fr")):
        (root / name).write_bytes(gzip.compress(plain[key]))
    return plain


def preset_config(shared_data: Path, source) -> dict:
    """A tiny config shaped like the presets; `source(key, url_path_and_member)` gives each
    input (a loopback URL, or the same content as a local file)."""
    config = tiny_pipeline_config(shared_data)
    config["wiki"]["local"] = {}
    config["local_text"] = {
        "en": [source("news2007.en", "news.2007.en.shuffled.gz"),
               source("news2008.en", "news.2008.en.shuffled.gz")],
        "fr": [source("news2009.fr", "news.2009.fr.shuffled.gz")],
    }
    config["local_text_max_lines"] = 280  # en: all 150 lines of 2007, 130 of 2008
    config["tokenize"]["shards"] = 1
    config["split"].update(valid=20, test=20, max_heldout_fraction=0.1)
    config["bpe"].update(n_codes=300, max_vocab=1000, sample_sentences=800)
    config["parallel"]["heldout"] = {"valid": 15, "test": 15, "seed": 42}
    config["parallel"]["pairs"] = {"en-fr": {"all": {
        lang: [source(f"multiun.{lang}",
                      f"OPUS-MultiUN/v1/moses/en-fr.txt.zip#MultiUN.en-fr.{lang}"),
               source(f"gv.{lang}",
                      f"OPUS-GlobalVoices/v2018q4/moses/en-fr.txt.zip#GlobalVoices.en-fr.{lang}")]
        for lang in ("en", "fr")}}}
    config["xnli"].update(
        languages=["en", "fr"], translate_train={},
        train=source("multinli.train.en.tsv",
                     "XNLI-MT-1.0.zip#XNLI-MT-1.0/multinli/multinli.train.en.tsv"),
        valid=source("xnli.dev.tsv", "XNLI-1.0.zip#XNLI-1.0/xnli.dev.tsv"),
        test=source("xnli.test.tsv", "XNLI-1.0.zip#XNLI-1.0/xnli.test.tsv"))
    config["mt_data"]["pairs"] = {"en-fr": {"test": {
        lang: source(f"newstest2014.{lang}", f"dev.tgz#dev/newstest2014-fren-ref.{lang}.sgm")
        for lang in ("en", "fr")}}}
    return config


def outputs(workdir: Path) -> dict[str, bytes]:
    found = {}
    for folder, patterns in (("data/bin", ["*.bin", "*.idx"]), ("data/bpe", ["codes", "vocab"]),
                             ("data/xnli", ["*.bin", "*.idx", "*.label"]),
                             ("data/mt", ["*.bin", "*.idx", "*.ref"])):
        for pattern in patterns:
            for path in (workdir / folder).glob(pattern):
                found[str(path.relative_to(workdir))] = path.read_bytes()
    return found


def test_preset_sources_over_http_give_the_same_data_as_local_files(tmp_path, shared_data):
    mirror = tmp_path / "mirror"
    plain = build_mirror(mirror, shared_data)
    local_dir = tmp_path / "local-files"
    local_dir.mkdir()

    def local(key: str, _where: str) -> str:
        path = local_dir / key
        if not path.exists():
            path.write_bytes(plain[key])
        return str(path)

    local_run = tmp_path / "local"
    write_config(local_run, preset_config(shared_data, local))
    snakemake(local_run, "data", timeout=1500)
    expected = outputs(local_run)
    assert len([name for name in expected if name.startswith("data/bin/en-fr.")]) == 12

    fetched = tmp_path / "fetched"
    with serve(mirror) as (url, requests):
        write_config(fetched, preset_config(shared_data, lambda _key, where: f"{url}/{where}"))
        dry = snakemake(fetched, "-n", "download")
        listing = [line for line in (dry.stdout + dry.stderr).splitlines() if "fetch " in line]
        assert len(listing) == 8, listing
        size = (mirror / "dev.tgz").stat().st_size
        assert any(f"fetch {url}/dev.tgz ({size:,} bytes) -> data/downloads/" in line
                   for line in listing), listing
        assert not (fetched / "data").exists()
        snakemake(fetched, "data", timeout=1500)
        assert outputs(fetched) == expected
        news = (fetched / "data" / "raw" / "text" / "en.txt").read_bytes()
        assert news == plain["news2007.en"] + b"".join(
            plain["news2008.en"].splitlines(keepends=True)[:130])  # local_text_max_lines
        labels = (fetched / "data" / "xnli" / "en.train.label").read_text().split()
        assert "contradiction" in labels and "contradictory" not in labels  # XNLI-MT's word
        pinned = read_lock(fetched / "config.lock")  # beside the --configfile
        assert len(pinned) == 8 and all(name.startswith(url) for name in pinned)
        dry = snakemake(fetched, "-n", "download")
        assert "fetch " not in dry.stdout + dry.stderr
        assert "Nothing to be done" in dry.stdout + dry.stderr
    gets = [name for name, _ in requests]
    assert gets.count("XNLI-1.0.zip") == 1  # one download serves both of its members


def test_parallel_sides_given_as_lists_are_joined_and_a_bad_config_is_one_line(
        tmp_path, shared_data):
    """parallel.pairs.{pair}.{split}.{lang} as a list of archive members (Europarl v8 and
    SETimes 2 for WMT'16 en-ro): downloaded, taken out and joined in order before the
    alignment check; `all` beside splits, or without parallel.heldout, stops the start."""
    mirror = tmp_path / "mirror"
    plain = build_mirror(mirror, shared_data)
    workdir = tmp_path / "run"
    with serve(mirror) as (url, _):
        config = preset_config(shared_data, lambda _key, where: f"{url}/{where}")
        zips = {"multiun": "OPUS-MultiUN/v1/moses/en-fr.txt.zip#MultiUN.en-fr",
                "gv": "OPUS-GlobalVoices/v2018q4/moses/en-fr.txt.zip#GlobalVoices.en-fr"}
        config["parallel"]["pairs"]["en-fr"] = {split: {
            lang: [f"{url}/{zips['multiun']}.{lang}", f"{url}/{zips['gv']}.{lang}"]
            for lang in ("en", "fr")} for split in ("train", "valid", "test")}
        write_config(workdir, config)
        snakemake(workdir, "data/para/aligned/en-fr.train.json")
    for lang in ("en", "fr"):
        joined = (workdir / f"data/para/joined/en-fr.train.{lang}.txt").read_bytes()
        assert joined == plain[f"multiun.{lang}"] + plain[f"gv.{lang}"]
    assert '"lines": 250' in (workdir / "data/para/aligned/en-fr.train.json").read_text()

    config["parallel"]["pairs"]["en-fr"]["all"] = config["parallel"]["pairs"]["en-fr"]["train"]
    write_config(workdir, config)
    result = snakemake(workdir, "-n", "data", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {workdir / 'config.yaml'}: key 'parallel.pairs.en-fr' has 'all' "
                      "and ['test', 'train', 'valid']; give the whole corpus ('all', split by the "
                      "workflow) or the splits, not both"]
    config["parallel"]["pairs"]["en-fr"] = {"all": config["parallel"]["pairs"]["en-fr"]["all"]}
    del config["parallel"]["heldout"]
    write_config(workdir, config)
    result = snakemake(workdir, "-n", "data", check=False)
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {workdir / 'config.yaml'}: key 'parallel.pairs.en-fr.all' needs "
        "'parallel.heldout' (valid, test, seed: the lines held out of the corpus); add it"]
