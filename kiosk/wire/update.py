"""The hand-off of a signed ``update`` command from the kiosk to the root updater.

The kiosk runs unprivileged and cannot install software. When the centre's signed
``cmd/update`` passes the command gate, the kiosk writes the message *as the centre
signed it* to ``state_dir/update-request.json``; systemd's ``kiosk-update.path`` sees the
file and starts ``kiosk-update.service`` (root), which runs ``kiosk update --request FILE``.

The file is written by the kiosk user, so root believes nothing in it that the centre did
not sign: it checks the signature again with ``[mqtt] centre_key``, for this kiosk's own
``cmd/update`` topic, refuses a command issued at or before the last one it acted on, and
only then fetches the release the command names and checks its SHA-256 (kiosk.ops.release_fetch).

The command's body names the release::

    {"version": "0.2.0", "url": "https://centre.example/releases/kiosk-0.2.0.tar.gz", "sha256": "<64 hex>"}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.wire import signing
from kiosk.errors import KioskValueError, SignatureRefused

REQUEST_FILE = "update-request.json"  # in [device] state_dir; watched by kiosk-update.path
MAX_REQUEST_BYTES = 16 * 1024
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+-]{0,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
URL_SCHEMES = ("https://", "http://", "file://")


class BadRequest(KioskValueError):
    """An update request that must not be acted on; the message says which check failed."""


@dataclass(frozen=True)
class Release:
    """What an ``update`` command asks for: this version, from this URL, with this SHA-256."""

    version: str
    url: str
    sha256: str

    def body(self) -> dict:
        return {"version": self.version, "url": self.url, "sha256": self.sha256}


def release_of(body) -> Release:
    """The release a command's body names; BadRequest names the field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be an object with version, url and sha256")
    version, url, digest = body.get("version"), body.get("url"), body.get("sha256")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise BadRequest("version: not a version number")
    if not isinstance(url, str) or not url.startswith(URL_SCHEMES) or len(url) > 1024 or any(c.isspace() for c in url):
        raise BadRequest("url: must be an https, http or file URL")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise BadRequest("sha256: must be 64 lower-case hex digits")
    return Release(version, url, digest)


def write(path: str | os.PathLike, topic: str, signed: bytes) -> None:
    """Atomically (re)place the request: the newest command wins; the path unit fires on the rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    data = json.dumps({"version": 1, "topic": topic, "command": signed.decode("utf-8")}, ensure_ascii=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


@dataclass(frozen=True)
class Request:
    """A request whose signature checked out: the release, the command's id and issue time."""

    release: Release
    command_id: str
    issued_at: float


def read_verified(path: str | os.PathLike, centre_keys: signing.KeyRing, topic: str) -> Request:
    """The request in ``path`` if the centre signed it for ``topic`` (this kiosk's cmd/update); BadRequest otherwise."""
    from kiosk.secrets import FileRefused, read_capped

    try:
        data = json.loads(read_capped(Path(path), MAX_REQUEST_BYTES))
    except FileRefused as exc:
        raise BadRequest(str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"{path}: not JSON") from None
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("command"), str):
        raise BadRequest(f"{path}: not a version-1 update request")
    if data.get("topic") != topic:
        raise BadRequest(f"{path}: for topic {data.get('topic')!r}, not this kiosk's {topic}")
    if not len(centre_keys):
        raise BadRequest("[mqtt] centre_key is empty: no update can be trusted")
    try:
        body = signing.verify(data["command"].encode("utf-8"), topic, centre_keys).payload
        issued = signing.parse_iso(body.get("iat")).timestamp()
    except SignatureRefused as exc:
        raise BadRequest(f"the centre's signature does not hold: {exc.reason}") from None
    if body.get("name") != "update" or not isinstance(body.get("id"), str):
        raise BadRequest("not an update command")
    return Request(release_of(body.get("body")), body["id"], issued)
