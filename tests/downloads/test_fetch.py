"""Downloads against a local HTTP server (standard library, 127.0.0.1): never the internet.

The server serves small fixture files and can misbehave on request: cut the connection after
half the body, ignore Range headers, stall, or serve corrupted bytes.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest

from data_download.downloads import dataset_files, dataset_path, download, list_datasets
from data_download.downloads.fetch import fetch, part_path, stamp_path
from hepml.errors import DownloadError

from .test_convert import make_top_jets, write_reference_h5

PAYLOAD = bytes(range(256)) * 1200 + b"end of the fixture file\n"  # ~300 kB, several 1 MiB-less chunks


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        server = self.server
        path = self.path.split("?")[0]
        server.log.append((path, self.headers.get("Range")))
        mode = server.modes.get(path, "ok")
        if isinstance(mode, list):  # a sequence of behaviours, one per request
            mode = mode.pop(0) if len(mode) > 1 else mode[0]
        if path not in server.files:
            body = b"not here"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = server.files[path]
        if mode == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if mode == "stall":
            server.release.wait(10)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "no_range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if mode in ("cut", "stall_body"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "stall_body":
                server.release.wait(10)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class FixtureServer:
    """A ThreadingHTTPServer on 127.0.0.1 with files, per-path behaviours and a request log."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files, self.httpd.modes, self.httpd.log = {}, {}, []
        self.httpd.release = threading.Event()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes, mode="ok") -> str:
        self.httpd.files[path] = data
        self.httpd.modes[path] = mode
        return self.base + path

    @property
    def log(self):
        return self.httpd.log

    def close(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FixtureServer()
    yield srv
    srv.close()


# ---------------------------------------------------------------------------------------------
# fetch: one file
# ---------------------------------------------------------------------------------------------


def test_happy_path_verifies_and_renames(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    out = fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), sha256=sha256(PAYLOAD), size=len(PAYLOAD), timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert not part_path(out).exists()
    stamp = json.loads(stamp_path(out).read_text())
    assert stamp["verified_by"] == ["sha256", "md5"] and stamp["size"] == len(PAYLOAD)
    assert stamp["checksums"]["sha256"] == sha256(PAYLOAD)
    n = len(server.log)
    assert fetch(url, out, md5=md5(PAYLOAD), timeout=5) == out  # already verified: no new request
    assert len(server.log) == n == 1


def test_changed_published_checksum_rechecks_the_file(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    out = fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), timeout=5)
    other = md5(b"a newer upload")
    with pytest.raises(DownloadError, match=f"md5 expected {other}"):
        fetch(url, out, md5=other, timeout=5)  # the stamp was for the old md5: check again, refetch, fail
    assert not out.exists() and len(server.log) == 2


def test_adler32_as_cms_publishes_it(server, tmp_path):
    url = server.add("/d/nano.root", PAYLOAD)
    adler = f"adler32:{zlib.adler32(PAYLOAD) & 0xFFFFFFFF:08x}"
    out = fetch(url, tmp_path / "nano.root", adler32=adler, timeout=5)
    assert json.loads(stamp_path(out).read_text())["verified_by"] == ["adler32"]


def test_resume_after_cut_connection(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode=["cut", "ok"])
    out = fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), size=len(PAYLOAD), timeout=5, retries=2)
    assert out.read_bytes() == PAYLOAD
    (first, r1), (second, r2) = server.log
    assert r1 is None and r2 == f"bytes={len(PAYLOAD) // 2}-"  # the retry asked only for the missing half


def test_interrupted_download_keeps_part_and_next_run_resumes(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode=["cut", "ok"])
    target = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as err:
        fetch(url, target, md5=md5(PAYLOAD), timeout=5, retries=0)
    msg = str(err.value)
    assert "interrupted" in msg and "run the same download again to resume" in msg and "\n" not in msg
    assert not target.exists() and part_path(target).stat().st_size == len(PAYLOAD) // 2
    fetch(url, target, md5=md5(PAYLOAD), timeout=5, retries=0)
    assert target.read_bytes() == PAYLOAD and not part_path(target).exists()
    assert server.log[-1][1] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode="no_range")
    target = tmp_path / "file.bin"
    part_path(target).write_bytes(b"garbage that must not survive" * 10)
    fetch(url, target, sha256=sha256(PAYLOAD), timeout=5)
    assert target.read_bytes() == PAYLOAD
    assert server.log[0][1] is not None  # it did ask to resume; the 200 answer made it start over


def test_complete_part_is_not_downloaded_again(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    target = tmp_path / "file.bin"
    part_path(target).write_bytes(PAYLOAD)
    fetch(url, target, md5=md5(PAYLOAD), timeout=5)  # size unknown: asks from the end, gets 416 "whole"
    assert target.read_bytes() == PAYLOAD
    assert server.log == [("/d/file.bin", f"bytes={len(PAYLOAD)}-")]


def test_checksum_mismatch_deletes_partial(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode="corrupt")
    target = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as err:
        fetch(url, target, md5=md5(PAYLOAD), timeout=5)
    msg = str(err.value)
    assert f"checksum mismatch for file.bin: md5 expected {md5(PAYLOAD)}, got " in msg
    assert "file.bin.part deleted" in msg and "\n" not in msg
    assert not target.exists() and not part_path(target).exists()


def test_size_mismatch(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    with pytest.raises(DownloadError, match=r"size mismatch for file.bin: expected 10 bytes"):
        fetch(url, tmp_path / "file.bin", size=10, timeout=5)
    assert not part_path(tmp_path / "file.bin").exists()


def test_404_names_url_and_status(server, tmp_path):
    url = server.base + "/d/missing.bin"
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "missing.bin", md5=md5(PAYLOAD), timeout=5)
    msg = str(err.value)
    assert "HTTP 404" in msg and url in msg and "\n" not in msg
    assert len(server.log) == 1  # a 404 is not retried
    assert not any(tmp_path.iterdir())


def test_refused_connection_says_so(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/d/file.bin"
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), timeout=2, retries=0)
    msg = str(err.value)
    assert "download of file.bin failed: cannot connect" in msg and url in msg
    assert "HEPML_DOWNLOAD_BASEURL" in msg and "partial" not in msg


def test_mirror_used_when_first_url_404s(server, tmp_path):
    good = server.add("/mirror/file.bin", PAYLOAD)
    out = fetch([server.base + "/gone/file.bin", good], tmp_path / "file.bin", md5=md5(PAYLOAD), timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert [p for p, _ in server.log] == ["/gone/file.bin", "/mirror/file.bin"]


def test_stalled_server_times_out(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode="stall")
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), timeout=0.3, retries=1)
    assert time.monotonic() - t0 < 5
    msg = str(err.value)
    assert "stalled" in msg and "0.3 s" in msg and "raise the timeout" in msg
    assert len(server.log) == 2  # one retry
    assert not (tmp_path / "file.bin").exists()


def test_stall_mid_body_keeps_what_arrived(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD, mode=["stall_body", "ok"])
    target = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="stalled: no data for 0.3 s"):
        fetch(url, target, md5=md5(PAYLOAD), timeout=0.3, retries=0)
    assert part_path(target).stat().st_size == len(PAYLOAD) // 2
    fetch(url, target, md5=md5(PAYLOAD), timeout=5)
    assert target.read_bytes() == PAYLOAD


def test_unwritable_destination_fails_before_any_request(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DownloadError) as err:
        fetch(url, blocker / "sub" / "file.bin", md5=md5(PAYLOAD), timeout=5)
    msg = str(err.value)
    assert f"cannot write to download folder {blocker / 'sub'}" in msg and "--dest" in msg and "HEPML_DATA" in msg
    assert server.log == []


def test_not_enough_disk_space_fails_before_any_request(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    with pytest.raises(DownloadError, match=r"not enough disk space for file.bin: needs \S+ TiB, .* free in"):
        fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), size=10**18, timeout=5)
    assert server.log == []


def test_corrupt_existing_file_is_replaced(server, tmp_path):
    url = server.add("/d/file.bin", PAYLOAD)
    target = tmp_path / "file.bin"
    target.write_bytes(b"stale copy")
    fetch(url, target, md5=md5(PAYLOAD), timeout=5)
    assert target.read_bytes() == PAYLOAD


def test_progress_bar_names_the_file(server, tmp_path, capsys):
    url = server.add("/d/file.bin", PAYLOAD)
    fetch(url, tmp_path / "file.bin", md5=md5(PAYLOAD), timeout=5, progress=True, label="toy/file.bin")
    assert "toy/file.bin" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# download(): registry entries through HEPML_DOWNLOAD_BASEURL
# ---------------------------------------------------------------------------------------------


def _registry(tmp_path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def test_download_converts_top_tagging_fixture(server, tmp_path, monkeypatch):
    jets = make_top_jets(n=24, seed=9)
    h5 = write_reference_h5(tmp_path / "src.h5", jets).read_bytes()
    server.add("/toy_top/train.h5", h5)
    server.add("/toy_top/test.h5", h5)
    reg = _registry(tmp_path, f"""
datasets:
  toy_top:
    title: toy top tagging
    description: reference-layout fixture
    licence: CC-BY-4.0
    citation: nobody
    convert: top_tagging_h5
    main: train.h5
    files:
      - {{name: train.h5, urls: ["https://example.invalid/train.h5"], md5: {md5(h5)}, size: {len(h5)}}}
      - {{name: test.h5, urls: ["https://example.invalid/test.h5"], sha256: {sha256(h5)}}}
""")
    monkeypatch.setenv("HEPML_DOWNLOAD_BASEURL", server.base)
    dest = tmp_path / "data"
    (row,) = list_datasets(registry=reg, dest=dest)
    assert row["status"] == "missing" and row["size"] is None and row["checksum"] == "partly published"
    main = download("toy_top", dest=dest, registry=reg, timeout=5)
    assert main == dest / "toy_top" / "train.root"
    assert [p for p, _ in server.log] == ["/toy_top/train.h5", "/toy_top/test.h5"]  # never example.invalid
    (row,) = list_datasets(registry=reg, dest=dest)
    assert row["status"] == "verified" and row["path"] == str(main)
    assert dataset_path("toy_top", dest=dest, registry=reg) == main
    assert dataset_files("toy_top", dest=dest, registry=reg) == [main, dest / "toy_top" / "test.root"]
    import uproot

    with uproot.open(main) as f:
        assert f["Events"].num_entries == 24 and "FatJet_tau3" in f["Events"].keys()
    assert download("toy_top", dest=dest, registry=reg, timeout=5) == main  # nothing fetched again
    assert len(server.log) == 2


def test_download_checks_published_entry_count(server, tmp_path, monkeypatch):
    import numpy as np
    import uproot

    root = tmp_path / "src.root"
    with uproot.recreate(root) as f:
        f.mktree("Events", {"x": np.float32})
        f["Events"].extend({"x": np.arange(5, dtype=np.float32)})
    server.add("/toy_nano/nano.root", root.read_bytes())
    reg = _registry(tmp_path, """
datasets:
  toy_nano:
    title: toy NanoAOD
    description: a ROOT file whose published entry count is wrong
    licence: CC0-1.0
    citation: nobody
    files:
      - {name: nano.root, urls: ["https://example.invalid/nano.root"], checksum_note: none published, entries: {tree: Events, count: 7}}
""")
    monkeypatch.setenv("HEPML_DOWNLOAD_BASEURL", server.base)
    with pytest.raises(DownloadError, match=r"toy_nano/nano.root: tree 'Events' has 5 entries, expected 7"):
        download("toy_nano", dest=tmp_path / "data", registry=reg, timeout=5)
    assert not (tmp_path / "data" / "toy_nano" / "nano.root").exists()
