"""Download a file over HTTP(S): resumable, retried, verified against a checksum list.

Wikimedia publishes `{lang}wiki-{date}-sha1sums.txt` (and md5sums) beside each dump.
A partial download is kept as `<output>.part` and continued with an HTTP Range request,
so an interrupted multi-gigabyte transfer does not start over. The output appears under
its final name only after the checksum matched.

Most corpora (OPUS, WMT, XNLI, IIT Bombay) publish no checksum. For those a lock file
(`--lock`, committed beside the config) pins each URL's sha256: the first download records
it, later ones must match it, so a file that changed upstream is refused, not used.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from xlm.errors import UserError
from xlm.io import atomic_open, progress

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


def read_lock(lock: Path) -> dict[str, str]:
    """URL -> sha256 from a lock file of `<sha256>  <url>` lines (sha256sum's layout)."""
    if not lock.is_file():
        return {}
    pinned = {}
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise UserError(f"{lock}:{number}: expected '<sha256>  <url>', got {line!r}; fix "
                            "or delete the line (the next download records it again)")
        pinned[parts[1]] = parts[0].lower()
    return pinned


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on a folder, so parallel downloads add lines one at a time."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def check_lock(lock: Path, url: str, digest: str, output: Path) -> None:
    """Compare `digest` with the one pinned for `url`, or pin it (first download)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lock.parent):
        pinned = read_lock(lock)
        if url in pinned:
            if pinned[url] != digest:
                raise UserError(f"{url}: sha256 {digest} differs from {pinned[url]} pinned in "
                                f"{lock}; the file changed upstream (download removed). If the "
                                f"new file is right, delete its line from {lock} and rerun")
            log.info("sha256 matches %s (%s)", lock, digest)
            return
        pinned[url] = digest
        with atomic_open(lock) as out:
            out.write("# sha256 of each download, pinned by its first download (xlm download)\n")
            for pinned_url, pinned_digest in sorted(pinned.items()):
                out.write(f"{pinned_digest}  {pinned_url}\n")
    log.info("sha256 %s of %s recorded in %s; commit it with the config", digest, output, lock)


def remote_size(url: str, timeout: float = 10) -> int | None:
    """The size the server announces for `url` (HEAD, Content-Length), or None."""
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "xlm-pipeline/0.1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return int(length) if length and length.isdigit() else None


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
             timeout: float = 60, backoff: float = 2.0, lock: Path | None = None,
             key: str = "wiki.url and wiki.date") -> None:
    """Download `url` to `output`, resuming across attempts and verifying the checksum
    (published: `checksum_url`; else pinned in `lock`). `key` names the config key."""
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
                raise UserError(f"{url}: HTTP {error.code}; check {key}") from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, ConnectionError) as error:
            reason = str(error)
        log.warning("attempt %d/%d of %s failed: %s", attempt, retries, url, reason)
        if attempt == retries:
            raise UserError(f"{url}: download failed after {retries} attempts ({reason}); "
                            "rerun to resume, or give a downloaded file instead")
        time.sleep(backoff * attempt)
    if expected:
        algorithm, digest = expected
        actual = _file_digest(part, algorithm)
        if actual != digest:
            part.unlink()
            raise UserError(f"{output}: {algorithm} {actual} does not match {digest} "
                            f"listed in {checksum_url}; the download was removed, rerun it")
        log.info("%s checksum ok (%s)", algorithm, digest)
    elif lock is not None:
        try:
            check_lock(Path(lock), url, _file_digest(part, "sha256"), output)
        except UserError:
            part.unlink()
            raise
    os.replace(part, output)
    log.info("downloaded %s (%d bytes)", output, output.stat().st_size)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="file to download")
    parser.add_argument("--output", required=True, type=Path, help="where to write it")
    parser.add_argument("--checksum-url", help="a '<digest>  <file name>' list (sha1/md5)")
    parser.add_argument("--retries", type=int, default=5, help="attempts, each resuming")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per connection")
    parser.add_argument("--lock", type=Path,
                        help="'<sha256>  <url>' lines: pin the first download, verify later ones")
    parser.add_argument("--key", default="wiki.url and wiki.date",
                        help="the config key, for error messages")


def run(args: argparse.Namespace) -> None:
    size = remote_size(args.url)
    log.info("fetching %s (%s)", args.url,
             f"{size:,} bytes" if size is not None else "size not announced")
    download(args.url, args.output, args.checksum_url, args.retries, args.timeout,
             lock=args.lock, key=args.key)
