"""Download a file over HTTP(S): resumable, retried, verified against a checksum list.

Wikimedia publishes `{lang}wiki-{date}-sha1sums.txt` (and md5sums) beside each dump.
A partial download is kept as `<output>.part` and continued with an HTTP Range request,
so an interrupted multi-gigabyte transfer does not start over. The output appears under
its final name only after the checksum matched.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from xlm.errors import UserError
from xlm.io import progress

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def fetch_checksum(checksum_url: str, filename: str, timeout: float = 60) -> tuple[str, str]:
    """Return (algorithm, hex digest) for `filename` from a `<digest>  <name>` list."""
    algorithm = "md5" if "md5" in Path(checksum_url).name else "sha1"
    try:
        with urllib.request.urlopen(checksum_url, timeout=timeout) as response:
            listing = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as error:
        raise UserError(f"{checksum_url}: cannot fetch the checksum list ({error})") from error
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename:
            return algorithm, parts[0].lower()
    raise UserError(f"{checksum_url}: no checksum listed for {filename}; check wiki.date")


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`, resuming from its current size."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "xlm-pipeline/0.1"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # the part file already holds everything
            return
        raise
    with response:
        if start and response.status != 206:
            log.warning("server ignored the Range request; restarting %s from 0", url)
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        mode = "ab" if start else "wb"
        with open(part, mode) as out:
            bar = progress(iter(lambda: response.read(CHUNK), b""), desc=f"download {part.name}",
                           unit="MiB", total=(total - start) // CHUNK + 1 if total else None)
            for block in bar:
                out.write(block)
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"transfer ended at {part.stat().st_size} of {total} bytes")


def download(url: str, output: Path, checksum_url: str | None, retries: int = 5,
             timeout: float = 60, backoff: float = 2.0) -> None:
    """Download `url` to `output`, resuming across attempts and verifying the checksum."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(output.name + ".part")
    expected = fetch_checksum(checksum_url, Path(url).name, timeout) if checksum_url else None
    for attempt in range(1, retries + 1):
        try:
            _transfer(url, part, timeout)
            break
        except urllib.error.HTTPError as error:
            if 400 <= error.code < 500 and error.code not in (408, 429):
                raise UserError(f"{url}: HTTP {error.code}; check wiki.url and wiki.date") from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, ConnectionError) as error:
            reason = str(error)
        log.warning("attempt %d/%d of %s failed: %s", attempt, retries, url, reason)
        if attempt == retries:
            raise UserError(f"{url}: download failed after {retries} attempts ({reason}); "
                            "rerun to resume, or set wiki.local to a downloaded file")
        time.sleep(backoff * attempt)
    if expected:
        algorithm, digest = expected
        actual = _file_digest(part, algorithm)
        if actual != digest:
            part.unlink()
            raise UserError(f"{output}: {algorithm} {actual} does not match {digest} "
                            f"listed in {checksum_url}; the download was removed, rerun it")
        log.info("%s checksum ok (%s)", algorithm, digest)
    os.replace(part, output)
    log.info("downloaded %s (%d bytes)", output, output.stat().st_size)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="file to download")
    parser.add_argument("--output", required=True, type=Path, help="where to write it")
    parser.add_argument("--checksum-url", help="a '<digest>  <file name>' list (sha1/md5)")
    parser.add_argument("--retries", type=int, default=5, help="attempts, each resuming")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per connection")


def run(args: argparse.Namespace) -> None:
    download(args.url, args.output, args.checksum_url, args.retries, args.timeout)
