"""Damaged and crafted archives end in one ``UserError``, never a traceback, and leave nothing behind.

Each row of ``CASES`` is an archive a stranger could hand us (a name too long for the disk, a
member named ``.``, a truncated download, a bad checksum inside, a header that claims an
absurd size); ``extract`` must refuse it with a message holding the row's text and leave the
work folder as it found it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest
from zoo_helpers import make_tar, make_zip

from gencli.data.download import extract
from gencli.errors import UserError


def _long_name() -> bytes:
    return make_zip({"ok/fine.txt": b"fine", "ok/" + "n" * 300 + ".jpg": b"x"})


def _dot_member() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(".")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    return buf.getvalue()


def _dot_zip_member() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok/fine.txt", b"fine")
        zf.writestr("./", b"")  # a folder named "." is harmless: only a file named so is refused
        zf.writestr(zipfile.ZipInfo("."), b"evil")
    return buf.getvalue()


def _truncated_tgz() -> bytes:
    whole = make_tar({f"d/train/{i}.jpg": os.urandom(3000) for i in range(8)})
    return whole[: len(whole) // 2]


def _bad_crc() -> bytes:
    data = bytearray(make_zip({"d/train/1.jpg": b"A" * 200}))
    at = data.index(b"A" * 200)  # stored uncompressed: flip a byte of the member's data
    data[at] = ord("B")
    return bytes(data)


def _pax_claiming(size: int) -> bytes:
    """A tar whose pax extended header claims ``size`` bytes of itself (base-256 size field)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("d/train/1.jpg")
        info.size = 4
        info.pax_headers = {"comment": "x"}
        tf.addfile(info, io.BytesIO(b"data"))
    raw = bytearray(buf.getvalue())
    header = raw[:512]
    assert header[156:157] == b"x"
    header[124:136] = b"\x80" + size.to_bytes(11, "big")  # GNU base-256 number
    header[148:156] = b"        "
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    raw[:512] = header
    return bytes(raw)


def _member_claiming(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("d/train/1.jpg")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"data"))
    raw = bytearray(buf.getvalue())
    header = raw[:512]
    header[124:136] = b"\x80" + size.to_bytes(11, "big")
    header[148:156] = b"        "
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    raw[:512] = header
    return bytes(raw)


CASES = [
    ("long-member-name", ".zip", _long_name, "too long"),
    ("member-named-dot", ".tar.gz", _dot_member, "has no name"),
    ("zip-member-named-dot", ".zip", _dot_zip_member, "has no name"),
    ("truncated-tgz", ".tar.gz", _truncated_tgz, "is damaged"),
    ("bad-crc", ".zip", _bad_crc, "is damaged"),
    ("pax-header-claims-1e18-bytes", ".tar", lambda: _pax_claiming(10**18), "is damaged"),
    ("member-claims-1e18-bytes", ".tar", lambda: _member_claiming(10**18), "refusing to extract"),
]


@pytest.mark.parametrize("name, suffix, build, message", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_or_crafted_archive_is_one_user_error_and_leaves_nothing(tmp_path, name, suffix, build, message):
    work = tmp_path / "work"
    work.mkdir()
    archive = tmp_path / f"{name}{suffix}"
    archive.write_bytes(build())
    with pytest.raises(UserError, match=message) as err:
        extract(archive, work / "dataset")
    assert "\n" not in str(err.value) and archive.name in str(err.value)
    assert sorted(p.name for p in work.iterdir()) == []  # not the target, not a temporary folder


def test_a_stale_extraction_folder_of_a_dead_process_is_removed_on_the_next_extract(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".dataset.extracting-{dead.pid}"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "half.jpg").write_bytes(b"half")
    alive = tmp_path / f".dataset.extracting-{os.getppid()}"  # a live process may still be extracting
    alive.mkdir()
    archive = tmp_path / "d.tar.gz"
    archive.write_bytes(make_tar({"d/train/1.jpg": b"x"}))
    extract(archive, tmp_path / "dataset")
    assert (tmp_path / "dataset" / "train" / "1.jpg").read_bytes() == b"x"
    assert not stale.exists()
    assert alive.is_dir()


# ------------------------------------------------------------------ mutation fuzz of archive headers
# Beyond the crafted rows above: any byte of a small archive's headers (tar's 512-byte header
# blocks, zip's local and central directory records) overwritten with any value must end in a
# complete extraction or one UserError, never another exception, and nothing may appear outside
# the target folder.
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ZIP = make_zip({"d/train/a.jpg": b"a" * 700, "d/train/b.jpg": b"b" * 90})


def _plain_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in {"d/train/a.jpg": b"a" * 700, "d/train/b.jpg": b"b" * 90}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_PLAIN_TAR = _plain_tar()


def _header_offsets(kind: str) -> list[int]:
    """Byte offsets of the archive's headers, where a mutation reaches the parser rather than data."""
    if kind == "tar":  # each member's header block: 512 bytes before its data
        return list(range(0, 512)) + list(range(1536, 2048))
    data = _ZIP
    offsets = []
    for sig in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"):
        start = 0
        while (at := data.find(sig, start)) >= 0:
            offsets.extend(range(at, min(at + 46, len(data))))
            start = at + 1
    return offsets


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["tar", "zip"]), picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                            min_size=1, max_size=6))
def test_any_mutation_of_an_archive_header_is_extracted_or_one_user_error(tmp_path_factory, kind, picks):
    original = _PLAIN_TAR if kind == "tar" else _ZIP
    offsets = _header_offsets(kind)
    data = bytearray(original)
    for index, value in picks:
        data[offsets[index % len(offsets)]] = value
    root = tmp_path_factory.mktemp("fuzz")
    work = root / "work"
    work.mkdir()
    archive = root / ("d.tar" if kind == "tar" else "d.zip")
    archive.write_bytes(bytes(data))
    try:
        extract(archive, work / "dataset")
    except UserError as exc:
        assert "\n" not in str(exc)
        assert sorted(p.name for p in work.iterdir()) == []
    else:
        for path in (work / "dataset").rglob("*"):
            assert path.resolve().is_relative_to((work / "dataset").resolve())
    assert sorted(p.name for p in root.iterdir()) == sorted([archive.name, "work"])
