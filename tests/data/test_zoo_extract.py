"""Safe, atomic extraction: nothing escapes the target, nothing half-extracted looks complete."""

from __future__ import annotations

import io
import stat
import tarfile
import warnings
import zipfile

import pytest
from zoo_helpers import make_tar, make_zip

from gencli.data.download import MANIFEST, extract, find_layout
from gencli.errors import UserError


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_zip_extracts_into_place_through_its_wrapping_folder(tmp_path):
    archive = tmp_path / "h2z.zip"
    archive.write_bytes(make_zip({"horse2zebra/trainA/1.jpg": b"a", "horse2zebra/trainB/2.jpg": b"bb",
                                  "__MACOSX/horse2zebra/._1.jpg": b"junk"}))
    target = tmp_path / "horse2zebra"
    locate = lambda folder: find_layout(folder, ("trainA", "trainB"), archive.name, "trainA/ trainB/")  # noqa: E731
    extract(archive, target, locate)
    assert (target / "trainA" / "1.jpg").read_bytes() == b"a" and (target / "trainB" / "2.jpg").read_bytes() == b"bb"
    assert (target / MANIFEST).is_file()
    assert _leftovers(tmp_path) == ["h2z.zip", "horse2zebra"]  # no temporary folder left


def test_tar_gz_extracts(tmp_path):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(make_tar({"facades/train/1.jpg": b"x", "facades/val/2.jpg": b"y"}))
    extract(archive, tmp_path / "facades")
    assert (tmp_path / "facades" / "train" / "1.jpg").read_bytes() == b"x"


def _zip_with(name: str, data: bytes = b"evil", mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok/fine.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return buf.getvalue()


def _tar_with(member: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("ok/fine.txt")
        ok.size = 4
        tf.addfile(ok, io.BytesIO(b"fine"))
        tf.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
    return buf.getvalue()


def _tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("suffix, payload, message", [
    (".zip", _zip_with("../evil.txt"), "escape"),
    (".zip", _zip_with("ok/../../evil.txt"), "escape"),
    (".zip", _zip_with("/tmp/evil.txt"), "absolute"),
    (".zip", _zip_with("C:/evil.txt"), "absolute"),
    (".zip", _zip_with("ok/link", b"../../evil.txt", stat.S_IFLNK | 0o777), "symbolic link"),
    (".tar.gz", _tar_with(_tar_member("../evil.txt")), "escape"),
    (".tar.gz", _tar_with(_tar_member("/evil.txt")), "absolute"),
    (".tar.gz", _tar_with(_tar_member("ok/link", tarfile.SYMTYPE, "/etc/passwd")), "link"),
    (".tar.gz", _tar_with(_tar_member("ok/hard", tarfile.LNKTYPE, "ok/fine.txt")), "link"),
    (".tar.gz", _tar_with(_tar_member("ok/dev", tarfile.CHRTYPE)), "device"),
])
def test_a_member_that_would_escape_is_refused_and_nothing_is_written(tmp_path, suffix, payload, message):
    work = tmp_path / "work"
    work.mkdir()
    archive = tmp_path / f"evil{suffix}"
    archive.write_bytes(payload)
    with pytest.raises(UserError, match=message) as err:
        extract(archive, work / "dataset")
    assert "nothing was written" in str(err.value)
    assert _leftovers(work) == []  # not the target, not a temporary folder
    assert not (tmp_path / "evil.txt").exists()


def test_an_unexpected_layout_says_what_was_found(tmp_path):
    archive = tmp_path / "horse2zebra.zip"
    archive.write_bytes(make_zip({"horse2zebra/horses/1.jpg": b"a", "horse2zebra/zebras/2.jpg": b"b",
                                  "horse2zebra/README.txt": b"r"}))
    locate = lambda folder: find_layout(folder, ("trainA", "trainB"), archive.name, "trainA/ trainB/")  # noqa: E731
    with pytest.raises(UserError) as err:
        extract(archive, tmp_path / "horse2zebra", locate)
    message = str(err.value)
    assert "horse2zebra.zip" in message and "trainA/ trainB/" in message
    assert "horses/" in message and "zebras/" in message and "README.txt" in message
    assert _leftovers(tmp_path) == ["horse2zebra.zip"]


def test_not_an_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "maps.tar.gz"
    archive.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(UserError, match="not a zip or tar archive"):
        extract(archive, tmp_path / "maps")


# ----------------------------------------------------------------------------- bounds and collisions


def _tar_of(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A tar.gz of (name, data) entries in order; data None makes a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicates a test asks for
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _refused(tmp_path, name: str, data: bytes, *expected: str) -> None:
    archive = tmp_path / name
    archive.write_bytes(data)
    before = _leftovers(tmp_path)
    with pytest.raises(UserError) as caught:
        extract(archive, tmp_path / "target")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and archive.name in message and "nothing was written" in message, message
    for text in expected:
        assert text in message, message
    assert _leftovers(tmp_path) == before  # no target, no temporary folder


ZERO_MB = b"\0" * (1 << 20)  # compresses to almost nothing: a small archive that unpacks large


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_that_unpacks_beyond_the_byte_limit_is_refused_before_writing(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("GENCLI_MAX_ARCHIVE_BYTES", str(3 << 20))
    entries = [(f"bomb/{i}.bin", ZERO_MB) for i in range(4)]
    data = _zip_of(entries) if kind == "zip" else _tar_of(entries)
    assert len(data) < 100_000
    _refused(tmp_path, f"bomb.{kind}", data, "4,194,304 bytes", "GENCLI_MAX_ARCHIVE_BYTES")
    monkeypatch.setenv("GENCLI_MAX_ARCHIVE_BYTES", str(5 << 20))
    extract(tmp_path / f"bomb.{kind}", tmp_path / "target")  # within a raised limit it unpacks
    assert (tmp_path / "target" / "3.bin").stat().st_size == 1 << 20


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_with_too_many_members_is_refused(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("GENCLI_MAX_ARCHIVE_MEMBERS", "5")
    entries = [(f"many/{i}.txt", b"x") for i in range(6)]
    _refused(tmp_path, f"many.{kind}", _zip_of(entries) if kind == "zip" else _tar_of(entries),
             "6 members", "GENCLI_MAX_ARCHIVE_MEMBERS")


def test_a_bad_limit_in_the_environment_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLI_MAX_ARCHIVE_BYTES", "lots")
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_of([("a/1.txt", b"x")]))
    with pytest.raises(UserError, match="GENCLI_MAX_ARCHIVE_BYTES='lots' is not a whole number"):
        extract(archive, tmp_path / "target")


@pytest.mark.parametrize("kind, entries, expected", [
    ("zip", [("d/a.txt", b"1"), ("d/a.txt", b"2")], "member 'd/a.txt' appears twice"),
    ("tar", [("d/a.txt", b"1"), ("d/./a.txt", b"2")], "member 'd/a.txt' appears twice"),
    ("zip", [("d/a", b"file"), ("d/a/b.txt", b"x")], "'d/a' is a file, yet member 'd/a/b.txt'"),
    ("tar", [("d/a/b.txt", b"x"), ("d/a", b"file")], "'d/a' is a file, yet member 'd/a/b.txt'"),
    ("tar", [("d/a", None), ("d/a", b"file")], "member 'd/a' appears twice"),
], ids=["zip-duplicate", "tar-duplicate-spelled-differently", "zip-file-then-folder", "tar-folder-then-file",
        "tar-folder-and-file"])
def test_colliding_members_are_refused_before_writing(tmp_path, kind, entries, expected):
    _refused(tmp_path, f"clash.{kind}", _zip_of(entries) if kind == "zip" else _tar_of(entries), expected)


def test_a_folder_listed_twice_is_harmless(tmp_path):
    archive = tmp_path / "dirs.tar.gz"
    archive.write_bytes(_tar_of([("d/", None), ("d/", None), ("d/a.txt", b"1")]))
    extract(archive, tmp_path / "target")
    assert (tmp_path / "target" / "a.txt").read_bytes() == b"1"
