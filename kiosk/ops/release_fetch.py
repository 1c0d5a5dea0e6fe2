"""Fetch a release named by a signed ``update`` command and unpack it, trusting only its SHA-256.

The URL may be anything (the centre's web server, a mirror, a file on a USB stick): what is
installed is what the centre signed the digest of. The archive is the project as
``kiosk fleet --bundle`` packs it (kiosk-src.tar.gz); it is unpacked with tarfile's ``data``
filter, so no member can land outside the folder, be a device or keep a set-uid bit.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from kiosk.errors import KioskOSError

MAX_RELEASE_BYTES = 200 * 1024 * 1024  # the project is about 2 MB; anything near this is not it
CHUNK = 1 << 16


class FetchFailed(KioskOSError):
    """The release could not be fetched, did not match its SHA-256, or is not the kiosk project."""


def fetch(url: str, sha256: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, checking size and SHA-256 as it streams; FetchFailed otherwise."""
    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            while chunk := resp.read(CHUNK):
                size += len(chunk)
                if size > MAX_RELEASE_BYTES:
                    raise FetchFailed(f"{url}: larger than {MAX_RELEASE_BYTES // (1024 * 1024)} MB")
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchFailed(f"cannot fetch {url}: {getattr(exc, 'reason', None) or exc}") from None
    if h.hexdigest() != sha256:
        dest.unlink(missing_ok=True)
        raise FetchFailed(f"{url}: SHA-256 {h.hexdigest()} is not the {sha256} the centre signed")
    return dest


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack the project archive into ``dest``; returns the folder holding pyproject.toml and kiosk/."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # a Python before the extraction filters (3.11.4): the same refusals, checked by hand
                tar.extractall(dest, members=_plain_members(tar, dest))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchFailed(f"{archive.name}: not a usable archive ({exc})") from None
    for root in (dest, *sorted(p for p in dest.iterdir() if p.is_dir())):
        if (root / "pyproject.toml").is_file() and (root / "kiosk" / "__init__.py").is_file():
            return root
    raise FetchFailed(f"{archive.name}: not the kiosk project (no pyproject.toml and kiosk/)")


def _plain_members(tar: tarfile.TarFile, dest: Path):
    root = dest.resolve()
    for m in tar.getmembers():
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or m.name.startswith("/") or not target.is_relative_to(root):
            raise FetchFailed(f"{m.name}: not a plain file or folder inside the archive's folder")
        m.mode &= 0o755
        yield m
