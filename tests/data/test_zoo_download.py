"""The shared downloader against a local HTTP server: progress, resume, checksums, offline."""

from __future__ import annotations

import hashlib
import io

import pytest
from rich.console import Console

from gencli.data.download import checksum_path, fetch, mirror_url
from gencli.errors import UserError

BODY = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


def test_download_shows_progress_and_records_the_checksum(server, tmp_path):
    server.files["horse2zebra.zip"] = BODY
    buf = io.StringIO()
    dest = fetch(server.url("horse2zebra.zip"), tmp_path / "horse2zebra.zip",
                 console=Console(file=buf, force_terminal=True, width=120))
    assert dest.read_bytes() == BODY
    assert "horse2zebra.zip" in buf.getvalue() and "100%" in buf.getvalue()
    assert checksum_path(dest).read_text().split()[0] == hashlib.sha256(BODY).hexdigest()
    assert not dest.with_name(dest.name + ".part").exists()
    # Reused on the next run: verified against the recorded checksum, not fetched again.
    fetch(server.url("horse2zebra.zip"), dest)
    assert server.count("horse2zebra.zip") == 1


def test_a_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    server.files["a.zip"] = BODY
    server.drop_after["a.zip"] = 300_000
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip")
    assert dest.read_bytes() == BODY
    assert server.requests == [("a.zip", None), ("a.zip", "bytes=300000-")]


def test_a_part_file_left_by_an_earlier_run_is_resumed(server, tmp_path):
    server.files["a.zip"] = BODY
    (tmp_path / "a.zip.part").write_bytes(BODY[:12345])
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip")
    assert dest.read_bytes() == BODY
    assert server.requests == [("a.zip", "bytes=12345-")]


def test_a_finished_part_file_is_not_fetched_again(server, tmp_path):
    server.files["a.zip"] = BODY
    (tmp_path / "a.zip.part").write_bytes(BODY)  # killed between the last byte and the rename
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip")
    assert dest.read_bytes() == BODY and server.requests == [("a.zip", f"bytes={len(BODY)}-")]


def test_a_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    server.files["a.zip"] = BODY
    server.ignore_range.add("a.zip")
    (tmp_path / "a.zip.part").write_bytes(b"stale bytes from elsewhere")
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip")
    assert dest.read_bytes() == BODY


def test_a_checksum_failure_is_retried_once(server, tmp_path):
    good = hashlib.sha256(BODY).hexdigest()
    server.sequences["a.zip"] = [b"garbled" + BODY[7:], BODY]
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip", sha256=good)
    assert dest.read_bytes() == BODY and server.count("a.zip") == 2


def test_a_checksum_failing_twice_is_a_clear_error_and_nothing_is_kept(server, tmp_path):
    server.files["a.zip"] = BODY
    with pytest.raises(UserError, match="failed its checksum twice"):
        fetch(server.url("a.zip"), tmp_path / "a.zip", sha256="0" * 64)
    assert server.count("a.zip") == 2
    assert list(tmp_path.iterdir()) == []


def test_a_local_file_that_no_longer_matches_its_recorded_checksum_is_fetched_again(server, tmp_path):
    server.files["a.zip"] = BODY
    dest = fetch(server.url("a.zip"), tmp_path / "a.zip")
    dest.write_bytes(BODY[:1000])  # damaged on disk since
    fetch(server.url("a.zip"), dest)
    assert dest.read_bytes() == BODY and server.count("a.zip") == 2


def test_offline_says_which_url_to_fetch_by_hand_and_where_to_put_it(closed_port, tmp_path):
    url = f"http://127.0.0.1:{closed_port}/monet2photo.zip"
    with pytest.raises(UserError) as err:
        fetch(url, tmp_path / "downloads" / "monet2photo.zip")
    message = str(err.value)
    assert url in message and str(tmp_path / "downloads" / "monet2photo.zip") in message
    assert "\n" not in message


def test_a_missing_file_names_the_http_status(server, tmp_path):
    with pytest.raises(UserError, match="404"):
        fetch(server.url("nope.zip"), tmp_path / "nope.zip")


def test_mirrors_replace_the_base_url(monkeypatch):
    url = "https://example.org/datasets/horse2zebra.zip"
    monkeypatch.delenv("GENCLI_MIRROR", raising=False)
    assert mirror_url("horse2zebra", url) == url
    monkeypatch.setenv("GENCLI_MIRROR", "http://127.0.0.1:9/all/")
    assert mirror_url("horse2zebra", url) == "http://127.0.0.1:9/all/horse2zebra.zip"
    monkeypatch.setenv("GENCLI_MIRROR_CATS_VS_DOGS", "http://127.0.0.1:9/cats")
    assert mirror_url("cats-vs-dogs", url) == "http://127.0.0.1:9/cats/horse2zebra.zip"
