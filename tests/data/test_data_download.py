"""URL sources against a local HTTP server: download once, resume, retry, check, and fail clearly."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.base.fileio import user_cache
from specforge.data import download, load_dataset

from .builders import tiny_images, tiny_labels

SHAPE = (4, 5, 1)


def npz_payload() -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=tiny_images(20),
        y_train=tiny_labels(20),
        x_test=tiny_images(4, seed=7),
        y_test=tiny_labels(4, seed=8),
    )
    return buffer.getvalue()


PAYLOAD = npz_payload()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at /data.npz with Range support, and misbehaves as the test server's settings say."""

    def do_GET(self):
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        if server.unavailable > 0:
            server.unavailable -= 1
            self.send_error(503)
            return
        if self.path != "/data.npz":
            self.send_error(404)
            return
        start = 0
        requested = self.headers.get("Range")
        if requested and not server.ignore_range:
            start = int(requested.removeprefix("bytes=").rstrip("-"))
            if start >= len(PAYLOAD):
                self.send_error(416)
                return
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drops > 0:
            server.drops -= 1
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)
        server.sent += len(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.ranges, httpd.unavailable, httpd.drops, httpd.sent, httpd.ignore_range = [], 0, 0, 0, False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/data.npz"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def spec(url: str, sha256: str = SHA256) -> dict:
    return {"source": "url", "url": url, "sha256": sha256, "format": "npz"}


def cached(server) -> Path:
    return download.cached_path(server.url, SHA256)


def test_downloads_once_into_the_xdg_cache(server, tmp_path):
    dataset = load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train.images, tiny_images(20))
    assert cached(server).parent == tmp_path / "cache" / "specforge"
    assert cached(server).read_bytes() == PAYLOAD
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert server.ranges == [None]


def test_cache_defaults_to_home_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_cache() == tmp_path / ".cache" / "specforge"


def test_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    part = cached(server).with_name(cached(server).name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:300])
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert server.ranges == ["bytes=300-"] and server.sent == len(PAYLOAD) - 300
    assert cached(server).read_bytes() == PAYLOAD and not part.exists()


def test_restarts_when_the_server_ignores_the_range(server, tmp_path):
    server.ignore_range = True
    part = cached(server).with_name(cached(server).name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from elsewhere")
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert cached(server).read_bytes() == PAYLOAD


def test_a_partial_file_longer_than_the_download_is_started_again(server, tmp_path):
    part = cached(server).with_name(cached(server).name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD + b"junk")
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert server.ranges == [f"bytes={len(PAYLOAD) + 4}-", None]
    assert cached(server).read_bytes() == PAYLOAD


def test_retries_after_server_errors(server, tmp_path):
    server.unavailable = 2
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert len(server.ranges) == 3 and cached(server).read_bytes() == PAYLOAD


def test_a_dropped_connection_is_resumed_where_it_stopped(server, tmp_path):
    server.drops = 1
    load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)
    assert server.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert cached(server).read_bytes() == PAYLOAD


def test_gives_up_after_the_last_attempt(server, tmp_path):
    server.unavailable = download.ATTEMPTS
    with pytest.raises(DataError, match=f"HTTP 503 .* after {download.ATTEMPTS} attempts"):
        load_dataset(spec(server.url), SHAPE, base_dir=tmp_path)


def test_wrong_sha256_is_refused_and_the_download_discarded(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(DataError) as error:
        load_dataset(spec(server.url, wrong), SHAPE, base_dir=tmp_path)
    problem = error.value.problems[0]
    assert problem.location.file == server.url
    assert problem.message == (
        f"the downloaded file's sha256 is {SHA256} but data.sha256 is {wrong}; check data.url and data.sha256"
    )
    assert not any(user_cache().iterdir())


def test_not_found_is_not_retried(server, tmp_path):
    url = server.url.replace("data.npz", "other.npz")
    with pytest.raises(DataError, match=r"cannot download .*other.npz: HTTP 404 Not Found; check the network"):
        load_dataset(spec(url), SHAPE, base_dir=tmp_path)
    assert len(server.ranges) == 1


def test_connection_refused_is_a_clear_data_error(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.npz"
    with pytest.raises(DataError) as error:
        load_dataset(spec(url), SHAPE, base_dir=tmp_path)
    assert error.value.problems[0].message == (
        f"cannot download {url}: Connection refused after {download.ATTEMPTS} attempts; check the network "
        "connection and data.url, or download the file yourself and give its path (source: npz or csv)"
    )


def test_csv_from_a_file_url(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = b"label,a,b\n1,0,255\n0,3,4\n1,7,7\n"
    csv_path = tmp_path / "d.csv"
    csv_path.write_bytes(text)
    url = csv_path.as_uri()
    dataset = load_dataset(
        {**spec(url, hashlib.sha256(text).hexdigest()), "format": "csv"}, (2,), validation="none", base_dir=tmp_path
    )
    assert dataset.train.labels.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(dataset.train.images, [[0, 255], [3, 4], [7, 7]])
