"""Safe, atomic extraction: nothing escapes the target, nothing half-extracted looks complete."""

from __future__ import annotations

import io
import stat
import tarfile
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
