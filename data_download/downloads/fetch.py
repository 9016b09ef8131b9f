"""Streaming, resumable, checksum-verified HTTP downloads (standard library only).

One public function, :func:`fetch`, does for one file what a careful physicist does by hand with
``curl -C -`` and ``md5sum``:

1. the bytes stream into ``<target>.part`` beside the target, never into the target itself;
2. a ``.part`` left by an earlier, interrupted run is resumed with an HTTP ``Range: bytes=N-``
   request: ``206 Partial Content`` appends, a server that ignores ranges (``200``) restarts the
   file from byte 0, ``416`` means the part is already whole;
3. a cut connection or a stalled server (no byte for ``timeout`` seconds) is retried a few times,
   resuming each time, then each mirror is tried in turn;
4. when the stream ends the size and the published checksum (md5, sha256 or adler32, whichever
   the registry has) are checked; only a match renames ``.part`` onto the target (``os.replace``
   in the same folder, which is atomic), a mismatch deletes the ``.part`` and says so in one line;
5. a small ``<target>.verified.json`` stamp records what was checked, so ``hepml data list`` can
   report "verified" without re-hashing gigabytes.

The stable ``.part`` name (rather than :func:`hepml.atomic.atomic_path`'s random temporary name)
is what makes resuming possible; the stamp itself is written with :func:`hepml.atomic.write_text`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from hepml.atomic import write_text
from hepml.errors import DownloadError

CHUNK_BYTES = 1 << 20
STAMP_SUFFIX = ".verified.json"
PART_SUFFIX = ".part"
CHECKSUM_KINDS = ("sha256", "md5", "adler32")
_USER_AGENT = "hepml-downloader/1 (+https://github.com/; python-urllib)"


class _Interrupted(Exception):
    """The stream stopped early (cut connection or stall); the ``.part`` keeps what arrived."""

    def __init__(self, reason: str, timed_out: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class _Restart(Exception):
    """The ``.part`` cannot be resumed against this server; it was discarded, start again."""


def part_path(target) -> Path:
    """The ``.part`` file that holds an unfinished download of ``target``."""
    target = Path(target)
    return target.with_name(target.name + PART_SUFFIX)


def stamp_path(target) -> Path:
    """The ``.verified.json`` stamp written after ``target`` was checked."""
    target = Path(target)
    return target.with_name(target.name + STAMP_SUFFIX)


def human_bytes(n: Optional[int]) -> str:
    """``1536`` -> ``'1.5 KiB'``; ``None`` -> ``'unknown size'``."""
    if n is None:
        return "unknown size"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


def file_checksums(path, kinds: Iterable[str] = CHECKSUM_KINDS) -> dict:
    """Hash ``path`` once, in 1 MiB blocks, for every kind asked (``md5``, ``sha256``, ``adler32``).

    adler32 is the checksum CERN's EOS and the CMS Open Data file indexes publish; it is written
    as 8 lower-case hex digits like theirs.
    """
    kinds = [k for k in kinds]
    hashers = {k: hashlib.new(k) for k in kinds if k in ("md5", "sha256")}
    adler = 1 if "adler32" in kinds else None
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK_BYTES)
            if not block:
                break
            for h in hashers.values():
                h.update(block)
            if adler is not None:
                adler = zlib.adler32(block, adler)
    out = {k: h.hexdigest() for k, h in hashers.items()}
    if adler is not None:
        out["adler32"] = f"{adler & 0xFFFFFFFF:08x}"
    return out


def read_stamp(target) -> Optional[dict]:
    """The stamp of ``target`` if it exists and still describes the file on disk, else ``None``."""
    target = Path(target)
    stamp = stamp_path(target)
    if not (target.is_file() and stamp.is_file()):
        return None
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if data.get("size") != target.stat().st_size:
        return None
    return data


def expected_checksums(*, sha256=None, md5=None, adler32=None) -> dict:
    """The published checksums that are set, normalised to lower-case hex (``adler32:`` prefix dropped)."""
    out = {}
    for kind, value in (("sha256", sha256), ("md5", md5), ("adler32", adler32)):
        if value:
            value = str(value).strip().lower()
            if kind == "adler32" and value.startswith("adler32:"):
                value = value[len("adler32:"):]
            out[kind] = value
    return out


def verify_file(path, *, sha256=None, md5=None, adler32=None, size=None, label=None) -> dict:
    """Check ``path`` against the published size and checksums; return the stamp dict.

    Raises :class:`DownloadError` naming the first quantity that differs, with both values.
    """
    path = Path(path)
    label = label or path.name
    actual_size = path.stat().st_size
    if size is not None and actual_size != int(size):
        raise DownloadError(
            f"size mismatch for {label}: expected {int(size)} bytes, got {actual_size}",
            "the file is incomplete or not the published one; delete it and download again",
        )
    expected = expected_checksums(sha256=sha256, md5=md5, adler32=adler32)
    got = file_checksums(path, kinds=sorted(set(expected) | {"sha256"}))
    for kind, want in expected.items():
        if got[kind] != want:
            raise DownloadError(
                f"checksum mismatch for {label}: {kind} expected {want}, got {got[kind]}",
                "the download is corrupt or the file changed upstream; run the download again, "
                "and report it if it persists",
            )
    verified_by = [k for k in CHECKSUM_KINDS if k in expected]
    return {
        "file": path.name,
        "size": actual_size,
        "checksums": got,
        "verified_by": verified_by,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_stamp(target, stamp: dict) -> None:
    """Record what was checked about ``target`` (atomically)."""
    write_text(stamp_path(target), json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def ensure_writable(folder) -> Path:
    """Create ``folder`` if needed and prove a file can be written there.

    Raises :class:`DownloadError` with the OS reason (read-only disk, no permission, a file in
    the way) before any byte is fetched.
    """
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hepml-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise DownloadError(
            f"cannot write to download folder {folder} ({reason})",
            "choose a writable folder with --dest, or set HEPML_DATA",
        ) from exc
    return folder


def _check_free_space(folder: Path, needed: Optional[int], label: str) -> None:
    if not needed or needed <= 0:
        return
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space for {label}: needs {human_bytes(needed)}, "
            f"{human_bytes(free)} free in {folder}",
            "free some space or choose another folder with --dest",
        )


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def _parse_content_range(value: Optional[str]):
    """``'bytes 100-199/200'`` -> ``(100, 200)``; total ``None`` when the server sends ``*``."""
    if not value:
        return None, None
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        return None, None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


class _Bar:
    """A rich progress bar per file, or nothing when progress is off."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False

    def start(self, label: str, total: Optional[int], done: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task(label, total=total, completed=done)
        else:
            self._progress.reset(self._task, total=total, completed=done, description=label)

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)


def _stream(url: str, part: Path, *, size: Optional[int], timeout: float, bar: _Bar, label: str) -> None:
    """Append the missing bytes of ``url`` to ``part``; return when the server says the file is whole."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and size > 0 and offset == size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            m = _UNSATISFIED_RANGE.match((exc.headers.get("Content-Range") or "").strip())
            if m and int(m.group(1)) == offset:
                return  # the part is already the whole file
            part.unlink()
            raise _Restart("the server refused to resume this partial file") from exc
        raise
    with response:
        status = response.status
        if offset and status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Restart(f"the server resumed at byte {start}, not {offset}")
            mode = "ab"
        else:
            # 200: the server sends the whole file (it ignored or was not asked for a Range)
            offset = 0
            mode = "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        expected_total = size if size is not None else total
        bar.start(label, expected_total, offset)
        written = offset
        with open(part, mode) as fh:
            while True:
                try:
                    # read1: whatever arrived (up to 1 MiB), so a stall or cut loses nothing received
                    block = response.read1(CHUNK_BYTES)
                except (socket.timeout, TimeoutError) as exc:
                    raise _Interrupted(f"no data for {timeout:g} s", timed_out=True) from exc
                except (http.client.IncompleteRead, ConnectionError, OSError) as exc:
                    raise _Interrupted(f"connection cut ({exc.__class__.__name__})") from exc
                if not block:
                    break
                try:
                    fh.write(block)
                except OSError as exc:
                    raise DownloadError(
                        f"cannot write {part} ({exc.strerror or exc.__class__.__name__})",
                        "free some disk space or choose another folder with --dest",
                    ) from exc
                written += len(block)
                bar.advance(len(block))
        if expected_total is not None and written < expected_total:
            raise _Interrupted(f"connection cut at {written} of {expected_total} bytes")


def _describe_http_error(exc: urllib.error.HTTPError) -> str:
    return f"HTTP {exc.code} {exc.reason}"


def fetch(urls: Union[str, Sequence[str]], dest_path, *, sha256: Optional[str] = None,
          md5: Optional[str] = None, adler32: Optional[str] = None, size: Optional[int] = None,
          timeout: float = 30.0, progress: bool = False, retries: int = 2,
          label: Optional[str] = None) -> Path:
    """Download ``urls`` (one URL or a list of mirrors) to ``dest_path``, resumable and verified.

    Parameters
    ----------
    urls : str or sequence of str
        The file's URL, or mirrors tried in order when one fails (404, refused, keeps stalling).
    dest_path : path
        Final location; the download runs in ``dest_path + '.part'`` and is renamed onto it only
        after the size and checksum match.
    sha256, md5, adler32 : str, optional
        Published checksums (hex). Every one given must match.
    size : int, optional
        Published size in bytes; checked before hashing and used for the disk-space check.
    timeout : float
        Seconds without a byte (connect or read) before the attempt counts as stalled.
    progress : bool
        Show a rich progress bar on stderr.
    retries : int
        Extra attempts per mirror after a cut or stalled connection, each resuming the ``.part``.

    Returns
    -------
    Path of the verified file. An existing file whose stamp still matches is returned at once;
    an existing file without a stamp is verified (and deleted if it does not match).
    """
    dest = Path(dest_path).expanduser()
    label = label or dest.name
    url_list = [urls] if isinstance(urls, str) else [u for u in urls if u]
    if not url_list:
        raise DownloadError(f"no URL known for {label}", "add a URL to the registry entry")
    ensure_writable(dest.parent)
    checks = dict(sha256=sha256, md5=md5, adler32=adler32, size=size, label=label)

    if dest.is_file():
        stamp = read_stamp(dest)
        expected = expected_checksums(sha256=sha256, md5=md5, adler32=adler32)
        if stamp is not None and all(stamp.get("checksums", {}).get(k) == v for k, v in expected.items()):
            return dest  # checked before against these very checksums; the stamp still fits the file
        try:
            write_stamp(dest, verify_file(dest, **checks))
            return dest
        except DownloadError:
            dest.unlink()  # a stale or corrupt copy; fetch a fresh one below

    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    _check_free_space(dest.parent, (size - have) if size is not None else None, label)

    failures = []
    with _Bar(progress) as bar:
        done = False
        for url in url_list:
            attempt = 0
            while True:
                try:
                    _stream(url, part, size=size, timeout=timeout, bar=bar, label=label)
                    done = True
                    break
                except _Restart as exc:
                    failures.append((url, str(exc), "restart"))
                    attempt += 1
                except _Interrupted as exc:
                    failures.append((url, exc.reason, "timeout" if exc.timed_out else "cut"))
                    attempt += 1
                except urllib.error.HTTPError as exc:
                    failures.append((url, _describe_http_error(exc), "http"))
                    if exc.code < 500:
                        break  # 404 and friends will not change on retry: next mirror
                    attempt += 1
                except urllib.error.URLError as exc:
                    reason = exc.reason
                    if isinstance(reason, (socket.timeout, TimeoutError)):
                        failures.append((url, f"no answer within {timeout:g} s", "timeout"))
                    else:
                        failures.append((url, f"cannot connect ({reason})", "connect"))
                    attempt += 1
                except (socket.timeout, TimeoutError):
                    failures.append((url, f"no answer within {timeout:g} s", "timeout"))
                    attempt += 1
                except (http.client.HTTPException, ConnectionError) as exc:
                    failures.append((url, f"connection cut ({exc.__class__.__name__})", "cut"))
                    attempt += 1
                if attempt > retries:
                    break
                time.sleep(min(0.2 * attempt, 2.0))
            if done:
                break

    if not done:
        url, reason, kind = failures[-1]
        have = part.stat().st_size if part.exists() else 0
        tried = f"{len(url_list)} URL" + ("s" if len(url_list) > 1 else "")
        if kind == "http":
            what = f"download of {label} failed: {reason} from {url} ({tried} tried)"
            fix = "the file may have moved; check the registry URL or set HEPML_DOWNLOAD_BASEURL to a mirror"
        elif kind == "connect":
            what = f"download of {label} failed: {reason} to {url} ({tried} tried)"
            fix = ("check your network or proxy, or set HEPML_DOWNLOAD_BASEURL to a reachable mirror"
                   + ("; running again resumes the partial file" if have else ""))
        elif kind == "timeout":
            kept = f", {have} bytes kept" if have else ""
            what = f"download of {label} stalled: {reason} from {url} ({tried} tried{kept})"
            fix = ("check your network or raise the timeout (timeout= in Python); "
                   "running again resumes the partial file")
        else:
            what = f"download of {label} interrupted: {reason} from {url} ({have} bytes kept in {part.name})"
            fix = "run the same download again to resume from the partial file"
        raise DownloadError(what, fix)

    try:
        stamp = verify_file(part, **checks)
    except DownloadError as exc:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise DownloadError(f"{exc.what} ({part.name} deleted)", exc.fix) from None
    os.replace(part, dest)
    stamp["file"] = dest.name
    stamp["url"] = url
    write_stamp(dest, stamp)
    return dest
