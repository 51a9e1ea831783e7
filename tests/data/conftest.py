"""Fixtures for the data tests: a local HTTP server on 127.0.0.1 and a temporary data directory."""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class FileServer:
    """What the local server serves and how it misbehaves, and what it was asked."""

    port: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    # name -> list of bodies for successive requests (e.g. a corrupt body, then the right one)
    sequences: dict[str, list[bytes]] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before dropping, once
    ignore_range: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (name, Range header)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.requests if n == name)


def _handler(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            name = self.path.lstrip("/")
            requested = self.headers.get("Range")
            state.requests.append((name, requested))
            if name in state.sequences and state.sequences[name]:
                body = state.sequences[name].pop(0) if len(state.sequences[name]) > 1 else state.sequences[name][0]
            elif name in state.files:
                body = state.files[name]
            else:
                self.send_error(404, "Not Found")
                return
            start = 0
            match = re.match(r"bytes=(\d+)-$", requested or "")
            if match and name not in state.ignore_range:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            cut = state.drop_after.pop(name, None)
            if cut is not None:  # send part of the body, then drop the connection
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def server():
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh GENCLI_DATA_DIR, with no mirror configured."""
    root = tmp_path / "data"
    monkeypatch.setenv("GENCLI_DATA_DIR", str(root))
    for key in list(os.environ):
        if key.startswith("GENCLI_MIRROR"):
            monkeypatch.delenv(key)
    return root


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (connection refused, like an offline machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
