"""Downloads over real HTTP on loopback: resume after a cut, checksum verification."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys

import pytest
from httpserver import serve

from xlm.errors import UserError
from xlm.text.download import download

DUMP = "frwiki-20231101-pages-articles.xml.bz2"


@pytest.fixture()
def mirror(tmp_path, shared_data):
    """A folder laid out like a Wikimedia dump directory, with a sha1sums file."""
    root = tmp_path / "mirror"
    root.mkdir()
    shutil.copy(shared_data / "wiki" / "frwiki-sample.xml.bz2", root / DUMP)
    digest = hashlib.sha1((root / DUMP).read_bytes()).hexdigest()
    (root / "sha1sums.txt").write_text(f"0000  other-file.xml.bz2\n{digest}  {DUMP}\n")
    return root


def test_interrupted_transfer_resumes_with_range(mirror, tmp_path):
    size = (mirror / DUMP).stat().st_size
    out = tmp_path / "out" / "fr.xml.bz2"
    with serve(mirror, cut_after={DUMP: size // 3}) as (url, requests):
        download(f"{url}/{DUMP}", out, f"{url}/sha1sums.txt", retries=3, backoff=0)
    assert out.read_bytes() == (mirror / DUMP).read_bytes()
    dump_requests = [rng for name, rng in requests if name == DUMP]
    assert dump_requests == [None, f"bytes={size // 3}-"]  # the second one resumed
    assert not (out.parent / (out.name + ".part")).exists()


def test_wrong_checksum_is_an_error_and_leaves_no_file(mirror, tmp_path):
    (mirror / "sha1sums.txt").write_text(f"{'0' * 40}  {DUMP}\n")
    out = tmp_path / "fr.xml.bz2"
    with serve(mirror) as (url, _), pytest.raises(UserError, match="does not match"):
        download(f"{url}/{DUMP}", out, f"{url}/sha1sums.txt", retries=1, backoff=0)
    assert list(tmp_path.iterdir()) == [mirror]


def test_md5_list_is_used_and_an_unlisted_file_refused(mirror, tmp_path):
    digest = hashlib.md5((mirror / DUMP).read_bytes()).hexdigest()
    (mirror / "md5sums.txt").write_text(f"{digest}  {DUMP}\n")
    with serve(mirror) as (url, _):
        download(f"{url}/{DUMP}", tmp_path / "a.bz2", f"{url}/md5sums.txt", retries=1)
        with pytest.raises(UserError, match="no checksum listed for other.xml.bz2"):
            download(f"{url}/other.xml.bz2", tmp_path / "b.bz2", f"{url}/md5sums.txt")
    assert (tmp_path / "a.bz2").read_bytes() == (mirror / DUMP).read_bytes()
    assert not (tmp_path / "b.bz2").exists()


def test_http_404_is_one_clear_line_from_the_cli(mirror, tmp_path):
    with serve(mirror) as (url, _):
        result = subprocess.run(
            [sys.executable, "-m", "xlm", "download", "--url", f"{url}/nope.xml.bz2",
             "--output", str(tmp_path / "x.bz2"), "--retries", "1"],
            capture_output=True, text=True,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {url}/nope.xml.bz2: HTTP 404; check wiki.url and wiki.date"
    )
    assert not (tmp_path / "x.bz2").exists()
