"""Fetch dataset archives and unpack them: progress, resume, checksums, safe extraction.

``fetch(url, dest)`` downloads into ``dest.part`` with a Rich progress bar, resumes a dropped
or interrupted transfer with an HTTP Range request (starting over cleanly when the server
ignores Range), and verifies the SHA-256: against the known checksum when there is one,
otherwise against the one recorded beside the file (``NAME.sha256``) on its first download. A
file that fails its checksum is deleted and fetched once more before giving up.

``extract(archive, target)`` checks every member of a zip or tar archive before writing
anything (no absolute paths, no ``..``, no links or devices, no name given twice, no file where
another member needs a folder, at most ``GENCLI_MAX_ARCHIVE_MEMBERS`` members and
``GENCLI_MAX_ARCHIVE_BYTES`` bytes unpacked, and no more than the free disk space), unpacks into
a temporary folder beside ``target`` and renames the result into place, so a half-extracted
dataset never looks like a complete one.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gencli.data.roots import MIRROR_ENV  # noqa: F401 - the name stays importable from here
from gencli.errors import UserError
from gencli.fileio import write_atomic

MANIFEST = ".gencli-source.json"
# Written into a dataset folder once a download has been read back whole: a folder without it
# (nor an extraction manifest) may be what an interrupted or failed download left behind.
COMPLETE_MARKER = ".gencli-complete"
TIMEOUT_S = 30.0
CHUNK = 1 << 20
# Attempts that end without a single new byte before a transfer is abandoned; attempts that
# do make progress (a connection dropped half-way) are always resumed.
STALLED_ATTEMPTS = 3
# Bounds on what one archive may unpack to; far above any dataset gencli knows (the largest
# holds about 140,000 files and 9 GB), far below what fills a disk. Environment variables raise them.
MAX_BYTES_ENV, MAX_BYTES = "GENCLI_MAX_ARCHIVE_BYTES", 50 << 30
MAX_MEMBERS_ENV, MAX_MEMBERS = "GENCLI_MAX_ARCHIVE_MEMBERS", 1_000_000
# Folders that archive tools add and that are never part of a dataset.
JUNK_FOLDERS = {"__MACOSX"}
# Folder names that carry meaning in a dataset layout: never looked through as a mere wrapper.
LAYOUT_FOLDERS = {"train", "test", "val", "trainA", "trainB", "testA", "testB"}
# The longest file or folder name the common file systems take (ext4, APFS, NTFS: 255).
MAX_NAME_BYTES = 255


def stderr_console():
    """Return the Rich console that progress bars and notices are written to (stderr)."""
    from gencli.ui.console import err

    return err


def say(message: str, console=None) -> None:
    """Print one notice line (skipped files, retries) on stderr."""
    (console or stderr_console()).print(message, highlight=False, markup=False)


def mirror_url(dataset: str, url: str) -> str:
    """Return ``url``, or the same file name under a mirror when one is configured.

    ``GENCLI_MIRROR_<DATASET>`` (upper case, other characters as ``_``) overrides one dataset,
    ``GENCLI_MIRROR`` every dataset: the file is then fetched from ``<mirror>/<file name>``.
    """
    per_dataset = f"{MIRROR_ENV}_{re.sub(r'[^A-Za-z0-9]', '_', dataset).upper()}"
    base = os.environ.get(per_dataset) or os.environ.get(MIRROR_ENV)
    if not base:
        return url
    return base.rstrip("/") + "/" + url.rsplit("/", 1)[-1]


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _recorded_checksum(dest: Path) -> str | None:
    path = checksum_path(dest)
    if not path.is_file():
        return None
    text = path.read_text().split()
    return text[0].lower() if text else None


def _record_checksum(dest: Path, digest: str) -> None:
    write_atomic(checksum_path(dest), f"{digest}  {dest.name}\n")


def fetch(url: str, dest: str | Path, sha256: str | None = None, *, console=None) -> Path:
    """Return ``dest`` holding the verified file at ``url``, downloading only what is missing.

    Raises ``UserError`` when the machine is offline (naming the URL and where to put the file
    by hand), when the server refuses, or when the file fails its checksum twice.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = (sha256 or _recorded_checksum(dest) or "").lower() or None
    if dest.is_file():
        if expected is None:  # placed by hand, or fetched before checksums were recorded
            _record_checksum(dest, sha256_of(dest))
            return dest
        if sha256_of(dest) == expected:
            return dest
        say(f"{dest} does not match its checksum; downloading it again", console)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    for attempt in (1, 2):
        _download(url, part, dest, console)
        digest = sha256_of(part)
        if expected is None or digest == expected:
            os.replace(part, dest)
            if expected is None:
                _record_checksum(dest, digest)
            return dest
        part.unlink()
        if attempt == 1:
            say(f"{dest.name} failed its checksum (got {digest[:12]}..., expected {expected[:12]}...); "
                "retrying once", console)
    recorded = "" if sha256 else f"; if the file changed upstream, delete {checksum_path(dest)} to accept the new one"
    raise UserError(
        f"{url} failed its checksum twice (expected SHA-256 {expected}, got {digest}); nothing was kept{recorded}"
    )


def _offline_error(url: str, dest: Path, reason: object) -> UserError:
    return UserError(
        f"cannot download {url} ({reason}); on an offline machine fetch that file by hand and put it at {dest}"
    )


def _download(url: str, part: Path, dest: Path, console=None) -> None:
    """Download ``url`` into ``part``, resuming from what ``part`` already holds."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from gencli import __version__
    from gencli.ui.progress import bars_hidden

    offset = part.stat().st_size if part.exists() else 0
    stalled = 0
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=console or stderr_console(),
                        disable=bars_hidden())
    with progress:
        task = progress.add_task(f"downloading {dest.name}", total=None, completed=offset)
        while True:
            request = urllib.request.Request(url, headers={"User-Agent": f"gencli/{__version__}"})
            if offset:
                request.add_header("Range", f"bytes={offset}-")
            before = offset
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    offset = _resume_point(response, offset)
                    length = response.headers.get("Content-Length")
                    total = offset + int(length) if length is not None else None
                    progress.update(task, total=total, completed=offset)
                    with open(part, "ab" if offset else "wb") as f:
                        while block := response.read(CHUNK):
                            f.write(block)
                            offset += len(block)
                            progress.update(task, completed=offset)
                    if total is None or offset >= total:
                        return
                    raise http.client.IncompleteRead(b"", total - offset)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and offset:
                    whole = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
                    if whole and int(whole.group(1)) == offset:
                        return  # the transfer had finished; only the rename was missing
                    part.unlink()  # our partial file is not a prefix the server knows
                    offset = 0
                    stalled += 1
                    if stalled < STALLED_ATTEMPTS:
                        continue
                raise UserError(
                    f"cannot download {url}: the server answered {exc.code} {exc.reason}; "
                    f"fetch that file by hand and put it at {dest}"
                ) from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                offset = part.stat().st_size if part.exists() else 0
                reason = getattr(exc, "reason", None) or exc
                if offset == 0 and before == 0 and isinstance(exc, urllib.error.URLError):
                    raise _offline_error(url, dest, reason) from None  # refused or unresolvable: offline
                stalled = 0 if offset > before else stalled + 1
                if stalled >= STALLED_ATTEMPTS:
                    raise _offline_error(url, dest, reason) from None
                time.sleep(0.1 * (stalled + 1))


def _resume_point(response, offset: int) -> int:
    """Return where the body of ``response`` starts: ``offset`` if it resumes, else 0."""
    if not offset:
        return 0
    if response.status == 206:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
    return 0  # the server ignored Range (or answered another range): start over


# ----------------------------------------------------------------------------- extraction


@dataclass
class _Member:
    parts: tuple[str, ...]
    is_dir: bool
    handle: object  # ZipInfo or TarInfo
    size: int = 0  # unpacked bytes, as the archive declares them


def archive_limit(env: str, default: int) -> int:
    """Return the bound set by environment variable ``env`` (a whole number at least 1), else ``default``."""
    raw = os.environ.get(env, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"{env}={os.environ[env]!r} is not a whole number at least 1; fix or unset it")
    return value


def _check_members(archive: Path, members: list[_Member], free_bytes: int | None = None) -> int:
    """Refuse an archive too large to unpack or whose members collide; return its unpacked bytes."""
    refuse = f"refusing to extract {archive.name}"
    limit = archive_limit(MAX_MEMBERS_ENV, MAX_MEMBERS)
    if len(members) > limit:
        raise UserError(f"{refuse}: it holds {len(members):,} members, more than the limit of {limit:,}; "
                        f"nothing was written (set {MAX_MEMBERS_ENV} to allow more)")
    total = sum(m.size for m in members)
    limit = archive_limit(MAX_BYTES_ENV, MAX_BYTES)
    if total > limit:
        raise UserError(f"{refuse}: it unpacks to {total:,} bytes, more than the limit of {limit:,}; "
                        f"nothing was written (set {MAX_BYTES_ENV} to allow more)")
    if free_bytes is not None and total > free_bytes:
        raise UserError(f"{refuse}: it unpacks to {total:,} bytes and only {free_bytes:,} are free there; "
                        "nothing was written (free some space or move GENCLI_DATA_DIR)")
    kinds: dict[tuple[str, ...], bool] = {}  # path -> is a folder
    for m in members:
        name = "/".join(m.parts)
        if m.parts in kinds and not (m.is_dir and kinds[m.parts]):
            raise UserError(f"{refuse}: member {name!r} appears twice; nothing was written")
        kinds[m.parts] = m.is_dir
    for path in kinds:
        for depth in range(1, len(path)):
            if kinds.get(path[:depth]) is False:
                raise UserError(f"{refuse}: {'/'.join(path[:depth])!r} is a file, yet member {'/'.join(path)!r} "
                                "needs it to be a folder; nothing was written")
    return total


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk that holds ``folder`` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _copy_at_most(src, dst, size: int, name: str, archive: Path) -> int:
    """Copy a member's bytes, refusing one that holds more than it declared."""
    written = 0
    while chunk := _reading(archive, lambda n=min(CHUNK, size - written + 1): src.read(n)):
        written += len(chunk)
        if written > size:
            raise UserError(f"refusing to extract {archive.name}: member {name!r} holds more than the "
                            f"{size:,} bytes it declares; the archive is damaged or crafted")
        dst.write(chunk)
    return written


def _member_parts(name: str, archive: Path) -> tuple[str, ...]:
    """Return the path components of an archive member, refusing any that leave the folder."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or PurePosixPath(name).is_absolute():
        raise UserError(f"refusing to extract {archive.name}: member {name!r} has an absolute path; nothing was written")
    parts = tuple(p for p in re.split(r"[\\/]+", name) if p not in ("", "."))
    if ".." in parts:
        raise UserError(f"refusing to extract {archive.name}: member {name!r} would escape the target folder; "
                        "nothing was written")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES or "\0" in part:
            shown = name if len(name) <= 60 else name[:60] + "..."
            raise UserError(f"refusing to extract {archive.name}: member {shown!r} has a name too long for a file "
                            f"(over {MAX_NAME_BYTES} bytes in one part) or holding a NUL; nothing was written")
    return parts


def _named(member: "_Member", name: str, archive: Path) -> "_Member":
    """Refuse a file member whose path names no file (``.``, ``./``): it would land on the target folder itself."""
    if not member.parts and not member.is_dir:
        raise UserError(f"refusing to extract {archive.name}: member {name!r} has no name of its own; "
                        "nothing was written")
    return member


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[_Member]:
    members = []
    for info in zf.infolist():
        parts = _member_parts(info.filename, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the tool recorded no Unix file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise UserError(f"refusing to extract {archive.name}: member {info.filename!r} is {what}; nothing was written")
        members.append(_named(_Member(parts, info.is_dir(), info, 0 if info.is_dir() else info.file_size),
                              info.filename, archive))
    return members


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[_Member]:
    members = []
    for info in tf.getmembers():
        parts = _member_parts(info.name, archive)
        if info.issym() or info.islnk():
            raise UserError(f"refusing to extract {archive.name}: member {info.name!r} is a link; nothing was written")
        if not (info.isfile() or info.isdir()):
            raise UserError(f"refusing to extract {archive.name}: member {info.name!r} is a device or special file; "
                            "nothing was written")
        members.append(_named(_Member(parts, info.isdir(), info, info.size if info.isfile() else 0), info.name, archive))
    return members


# What reading a damaged, truncated or crafted archive raises, from the archive modules and the
# decompressors under them (a bad CRC, an end of data mid-member, a header claiming 10**18 bytes).
DAMAGED = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
           OverflowError, MemoryError, ValueError, NotImplementedError, OSError)


def _reading(archive: Path, read: Callable):
    """Return ``read()``, a read from ``archive``; what a damaged archive raises becomes one line."""
    try:
        return read()
    except UserError:
        raise
    except DAMAGED as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:100] or type(exc).__name__
        raise UserError(f"refusing to extract {archive.name}: it is damaged or incomplete ({reason}); nothing was "
                        "written; delete it and fetch it again") from None


def _remove_stale_extractions(target: Path) -> None:
    """Remove the ``.NAME.extracting-PID`` folders of extractions whose process is gone (killed half-way)."""
    prefix = f".{target.name}.extracting-"
    try:
        leftovers = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for folder in leftovers:
        pid = folder.name[len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number no process has: leave it be
    return True


def _open_archive(archive: Path):
    if zipfile.is_zipfile(archive):
        return zipfile.ZipFile(archive), _zip_members, lambda a, m: a.open(m.handle)
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError):
        raise UserError(f"{archive} is not a zip or tar archive (damaged download?); delete it and try again") from None
    return tf, _tar_members, lambda a, m: a.extractfile(m.handle)


def extract(archive: str | Path, target: str | Path, locate: Callable[[Path], Path] | None = None,
            console=None) -> Path:
    """Return ``target`` holding the contents of ``archive``, extracted safely and atomically.

    ``locate(folder)`` returns the folder inside the unpacked tree that becomes ``target`` (and
    raises ``UserError`` saying what it found when the layout is not the expected one); by
    default a single wrapping folder is looked through.
    """
    from rich.progress import Progress

    from gencli.ui.progress import bars_hidden

    archive, target = Path(archive), Path(target)
    handle, members_of, open_member = _reading(archive, lambda: _open_archive(archive))
    with handle:
        listed = _reading(archive, lambda: members_of(archive, handle))
        members = [m for m in listed if not (m.parts and m.parts[0] in JUNK_FOLDERS)]
        _check_members(archive, members, _free_bytes(target.parent))
        _remove_stale_extractions(target)
        tmp = target.parent / f".{target.name}.extracting-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            total_bytes = 0
            with Progress(console=console or stderr_console(), transient=True, disable=bars_hidden()) as progress:
                task = progress.add_task(f"extracting {archive.name}", total=len(members))
                for member in members:
                    path = tmp.joinpath(*member.parts) if member.parts else tmp
                    if member.is_dir:
                        path.mkdir(parents=True, exist_ok=True)
                    else:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        src = _reading(archive, lambda m=member: open_member(handle, m))
                        with src, open(path, "wb") as dst:
                            total_bytes += _copy_at_most(src, dst, member.size, "/".join(member.parts), archive)
                    progress.advance(task)
            root = locate(tmp) if locate else unwrap(tmp)
            files = sum(1 for m in members if not m.is_dir)
            manifest = {"archive": archive.name, "files": files, "bytes": total_bytes, "extracted": time.time()}
            (root / MANIFEST).write_text(json.dumps(manifest))
            try:
                os.rename(root, target)
            except OSError:
                if not target.is_dir():  # another process finishing first is fine; anything else is not
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def unwrap(folder: Path) -> Path:
    """Return the folder inside ``folder`` that holds the data, looking through lone sub-folders.

    Archives often wrap everything in one folder (``PetImages/``, ``images/``); a lone folder
    whose name means something in a layout (``train/``, ``trainA/``, ...) is kept.
    """
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in JUNK_FOLDERS]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in LAYOUT_FOLDERS:
            folder = entries[0]
        else:
            return folder


def describe_tree(folder: Path, limit: int = 8) -> str:
    """Return a short listing of what ``folder`` holds, for layout errors ("a/, b/, c.txt")."""
    folder = unwrap(folder)
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    names = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    if len(entries) > limit:
        names.append(f"... ({len(entries) - limit} more)")
    return ", ".join(names) if names else "nothing"


def find_layout(folder: Path, required: tuple[str, ...], archive_name: str, describe: str, depth: int = 3) -> Path:
    """Return the folder under ``folder`` holding every sub-folder in ``required``.

    Raises ``UserError`` naming what the archive holds when no such folder exists.
    """
    frontier = [folder]
    for _ in range(depth + 1):
        for candidate in frontier:
            if all((candidate / name).is_dir() for name in required):
                return candidate
        frontier = [p for f in frontier for p in sorted(f.iterdir()) if p.is_dir() and p.name not in JUNK_FOLDERS]
    raise UserError(
        f"{archive_name} does not have the expected layout ({describe}); it holds: {describe_tree(folder)}"
    )


def read_manifest(folder: Path) -> dict | None:
    """Return what ``extract`` recorded about a folder (archive, file count, bytes), if anything."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def mark_complete(folder: Path) -> None:
    """Record that ``folder`` holds a complete dataset (after it was read back successfully)."""
    if (folder / COMPLETE_MARKER).is_file():
        return
    try:
        write_atomic(folder / COMPLETE_MARKER, json.dumps({"complete": time.time()}).encode())
    except OSError:
        pass  # a read-only data folder: the data still loads, the listing just cannot vouch for it


def completeness(folder: Path) -> str:
    """Return "yes" when ``folder`` is a known-complete dataset, "unverified" when it holds files
    that no completed download or extraction accounts for (a failed download, or files placed by
    hand and not yet read), and "no" when it holds no file at all."""
    if (folder / COMPLETE_MARKER).is_file() or read_manifest(folder) is not None:
        return "yes"
    return "unverified" if has_files(folder) else "no"


def _files(folder: Path, follow_symlinks: bool):
    """Yield the ``os.DirEntry`` of every file under ``folder``, without entering linked folders."""
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=follow_symlinks):
                    yield entry


def has_files(folder: Path) -> bool:
    """Whether any non-empty file (or link to one) lies under ``folder`` (empty sub-folders do not count)."""
    return folder.is_dir() and any(entry.stat().st_size > 0 for entry in _files(folder, follow_symlinks=True))


def remove_empty_folders(folder: Path) -> None:
    """Delete ``folder`` and the folders under it when none of them holds a file."""
    if folder.is_dir() and not has_files(folder):
        shutil.rmtree(folder, ignore_errors=True)


def one_line_reason(exc: BaseException) -> str:
    """Return why a download failed in a few words: the innermost cause of a multi-line message.

    torchvision reports every mirror it tried, one URL error each over several lines; the
    user needs the last cause only ("Name or service not known").
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip().strip("()")]
    reason = lines[-1] if lines else type(exc).__name__
    wrapped = re.fullmatch(r"<urlopen error (?:\[Errno [^\]]*\] )?(.*)>", reason)
    return wrapped.group(1) if wrapped else reason


def disk_usage(path: Path) -> int:
    """Return the bytes under ``path`` (0 when missing), trusting an extraction manifest."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    manifest = read_manifest(path)
    if manifest and "bytes" in manifest:
        return int(manifest["bytes"])
    return sum(entry.stat(follow_symlinks=False).st_size for entry in _files(path, follow_symlinks=False))
