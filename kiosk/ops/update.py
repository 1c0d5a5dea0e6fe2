"""``kiosk update``: safe update of a provisioned kiosk: new release venv, switch, restart, roll back if not ready.

    sudo kiosk update                        # install this checkout (or scripts/update)
    sudo kiosk update --source /tmp/kiosk-src --ready-timeout 120

1. The new version goes into a fresh venv /opt/kiosk/releases/VERSION-DIGEST (the running
   kiosk is untouched); its ``kiosk config check`` must accept /etc/kiosk/kiosk.toml.
2. /opt/kiosk/venv is switched to it atomically (a symlink rename) and kiosk.service restarted.
3. The service must report READY (Type=notify) and stay up for --settle seconds; otherwise the
   link goes back to the previous release, the service is restarted on it, and the exit code is 1.
4. Old releases beyond --keep are removed (the current and the previous are always kept).

``--dry-run`` prints what it would do and changes nothing; it never claims the kiosk is ready
(nothing was installed or restarted). Exit codes: 0 updated (or already current, or a dry run),
1 update failed or rolled back, 2 usage.

``--request FILE`` (what kiosk-update.service runs when the kiosk queued a signed ``update``
command, see :mod:`kiosk.wire.update`): the source is the release the centre's command names,
fetched and checked against its signed SHA-256, and then the same steps as above.
``kiosk update rollout`` sends such commands to a canary share of the fleet, then the rest
(:mod:`kiosk.ops.rollout`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from kiosk.errors import KioskOSError, KioskValueError
from kiosk.ops import provision

SOURCE = provision.SOURCE


class UpdateError(KioskValueError):
    """Bad options or a source that is not the kiosk project: exit 2."""


class StepFailed(KioskOSError):
    """Installing or checking the new release failed; the running kiosk was not touched: exit 1."""


def release_name(source: Path) -> str:
    """VERSION-DIGEST of a source tree: the same name provisioning gives its first release."""
    return f"{provision.project_version(source)}-{provision.source_digest(source)[:10]}"


class Updater:
    """Release switching for one prefix (/opt/kiosk); ``sleep`` and ``clock`` are injected for tests."""

    def __init__(self, prefix: Path, systemctl: list[str], dry_run: bool, out: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.prefix, self.systemctl, self.dry_run, self.out = prefix, systemctl, dry_run, out
        self.sleep, self.clock = sleep, clock

    @property
    def link(self) -> Path:
        return self.prefix / "venv"

    def current(self) -> str | None:
        return os.readlink(self.link) if self.link.is_symlink() else None

    def sh(self, cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess | None:
        self.out(f"{'would ' if self.dry_run else ''}{what}: {shlex.join(cmd)}")
        if self.dry_run:
            return None
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise StepFailed(f"{what} failed: {cmd[0]}: {exc.strerror}") from None
        if check and r.returncode != 0:
            raise StepFailed(f"{what} failed ({r.returncode}):\n{r.stdout.strip()}")
        return r

    def switch(self, target: str) -> None:
        self.out(f"{'would ' if self.dry_run else ''}switch {self.link} -> {target}")
        if self.dry_run:
            return
        tmp = self.link.with_name(".venv.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, self.link)  # atomic: the kiosk sees the old or the new release, never none

    def service_state(self) -> dict[str, str]:
        try:
            r = subprocess.run([*self.systemctl, "show", "kiosk.service", "--property=ActiveState,SubState,NRestarts,StatusText"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            return {"ActiveState": "unknown", "SubState": f"{self.systemctl[0]}: {exc.strerror}"}
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def wait_ready(self, timeout: float, settle: float) -> tuple[bool, str]:
        """READY within ``timeout`` (Type=notify: 'active' means READY=1 was sent), then no restart for ``settle``."""
        deadline = self.clock() + timeout
        state: dict[str, str] = {}
        while self.clock() < deadline:
            state = self.service_state()
            if state.get("ActiveState") == "active":
                break
            if state.get("ActiveState") == "failed":
                return False, f"service failed ({state.get('SubState')})"
            self.sleep(1)
        else:
            return False, f"not ready after {timeout:g} s ({state.get('ActiveState')}/{state.get('SubState')})"
        restarts = state.get("NRestarts", "0")
        end = self.clock() + settle
        while self.clock() < end:
            self.sleep(1)
            now = self.service_state()
            if now.get("ActiveState") != "active" or now.get("NRestarts", "0") != restarts:
                return False, f"crashed {settle:g} s after start ({now.get('ActiveState')}/{now.get('SubState')})"
        return True, state.get("StatusText", "")

    def prune(self, keep: int, protect: set[str]) -> None:
        folder = self.prefix / "releases"
        if not folder.is_dir():
            return
        releases = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
        kept = 0
        for p in releases:
            if f"releases/{p.name}" in protect:
                continue
            kept += 1
            if kept > keep:
                self.out(f"{'would ' if self.dry_run else ''}remove old release {p}")
                if not self.dry_run:
                    shutil.rmtree(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--source", default=str(SOURCE), help="the project to install (default: this checkout)")
    p.add_argument("--request", metavar="FILE", help="install the release of the centre's signed update command "
                                                     "the kiosk queued in FILE (kiosk-update.service)")
    p.add_argument("--config", default="/etc/kiosk/kiosk.toml", help="config the new release must accept")
    p.add_argument("--ready-timeout", type=float, default=120, help="seconds to wait for READY (default 120)")
    p.add_argument("--settle", type=float, default=45, help="seconds the new release must then stay up (default 45, > WatchdogSec)")
    p.add_argument("--keep", type=int, default=3, help="older releases to keep besides the current and previous (default 3)")
    p.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    p.add_argument("--prefix", default="/opt/kiosk", help=argparse.SUPPRESS)
    p.add_argument("--systemctl", default="systemctl", help=argparse.SUPPRESS)  # tests substitute a fake


def run(args, updater: Updater | None = None) -> int:
    if args.request:
        return run_request(args, updater)
    return install(args, updater)


def run_request(args, updater: Updater | None = None) -> int:
    """The centre's signed update, queued by the kiosk: check it again, fetch and check the release, install it."""
    import tempfile

    from kiosk import config as kconfig
    from kiosk.door.remote.gate import ReplayFloor, centre_keyring
    from kiosk.ops.release_fetch import FetchFailed, fetch, unpack
    from kiosk.wire.signing import SigningKeyError
    from kiosk.wire.topics import Topics
    from kiosk.wire.update import BadRequest, read_verified

    cfg = kconfig.load(args.config)
    if "update" not in cfg.mqtt.commands:
        print(f"update: {args.config} does not enable the update command ([mqtt] commands); ignoring {args.request}",
              file=sys.stderr)
        return 1
    try:
        ring = centre_keyring(cfg.mqtt.centre_key and str(cfg.resolve(cfg.mqtt.centre_key)))
        request = read_verified(args.request, ring, Topics(cfg.device.site, cfg.device.id).cmd("update"))
    except (BadRequest, SigningKeyError) as exc:
        print(f"update: refused {args.request}: {exc}", file=sys.stderr)
        return 1
    prefix = Path(args.prefix)
    # Like the kiosk's own replay floor, but root's: the kiosk user cannot move it back.
    floor = ReplayFloor(prefix / "update-floor.json")
    if floor.refuses(request.issued_at):
        print(f"update: command {request.command_id} was acted on before; nothing to do")
        return 0
    release = request.release
    print(f"update: the centre's command {request.command_id} asks for {release.version} from {release.url}")
    if args.dry_run:
        print("update: dry run: nothing was fetched, installed, switched or restarted")
        return 0
    floor.advance(request.issued_at)  # before acting: a request that fails is not retried by the path unit
    prefix.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".update-", dir=prefix) as tmp:
        try:
            source = unpack(fetch(release.url, release.sha256, Path(tmp) / "release.tar.gz"), Path(tmp) / "src")
        except FetchFailed as exc:
            print(f"update: {exc}\nupdate: the running kiosk was not touched", file=sys.stderr)
            return 1
        found = provision.project_version(source)
        if found != release.version:
            print(f"update: the release is version {found}, not the {release.version} the command names; "
                  "the running kiosk was not touched", file=sys.stderr)
            return 1
        args.source = str(source)
        return install(args, updater)


def install(args, updater: Updater | None = None) -> int:
    """The safe update from ``args.source``: new release venv, config check, switch, wait for READY, roll back."""
    source = Path(args.source).resolve()
    if not (source / "pyproject.toml").is_file() or not (source / "kiosk" / "__init__.py").is_file():
        raise UpdateError(f"{source} is not the kiosk project (no pyproject.toml and kiosk/)")
    if not args.dry_run and os.geteuid() != 0 and args.prefix == "/opt/kiosk":
        raise UpdateError("run as root (sudo), or try --dry-run")
    if args.keep < 0 or args.ready_timeout <= 0 or args.settle < 0:
        raise UpdateError("--keep, --ready-timeout and --settle must not be negative")
    up = updater or Updater(Path(args.prefix), args.systemctl.split(), args.dry_run)
    name = release_name(source)
    target = f"releases/{name}"
    release = up.prefix / target
    previous = up.current()
    if previous == target and (release / ".kiosk-release").is_file():
        print(f"update: already running {name}; nothing to do")
        return 0
    print(f"update: {'dry run, ' if args.dry_run else ''}{previous or '(none)'} -> {target}")
    try:
        if not (release / ".kiosk-release").is_file():
            if release.exists() and not args.dry_run:
                shutil.rmtree(release)  # an interrupted earlier attempt
            up.sh([provision.system_python(), "-m", "venv", "--system-site-packages", str(release)], "create the release venv")
            up.sh([str(release / "bin/python"), "-m", "pip", "install", "-q", "--no-cache-dir", "--disable-pip-version-check",
                   str(source)], "install the new version")
        # The new code must accept this kiosk's config before it replaces the running one.
        up.sh([str(release / "bin/kiosk"), "config", "check", args.config], "check the config with the new version")
        if not args.dry_run:
            (release / ".kiosk-release").write_text(name + "\n")
    except (StepFailed, OSError) as exc:
        print(f"update: {exc}\nupdate: the running kiosk was not touched", file=sys.stderr)
        return 1
    up.switch(target)
    up.sh([*up.systemctl, "restart", "kiosk.service"], "restart the kiosk", check=False)
    if args.dry_run:
        up.out(f"would wait up to {args.ready_timeout:g} s for READY, then {args.settle:g} s without a restart, "
               f"and roll back to {previous or '(none)'} otherwise")
        up.prune(args.keep, {target, previous or ""})
        print("update: dry run: nothing was installed, switched or restarted")
        return 0
    ok, detail = up.wait_ready(args.ready_timeout, args.settle)
    if ok:
        print(f"update: kiosk.service is ready on {name}{f' ({detail})' if detail else ''}")
        up.prune(args.keep, {target, previous or ""})
        return 0
    print(f"update: {name} did not become ready: {detail}", file=sys.stderr)
    if not previous:
        print("update: no previous release to go back to; see `journalctl -u kiosk -b`", file=sys.stderr)
        return 1
    up.switch(previous)
    up.sh([*up.systemctl, "restart", "kiosk.service"], "restart on the previous release", check=False)
    ok, detail = up.wait_ready(args.ready_timeout, 0)
    print(f"update: rolled back to {previous}: {'ready' if ok else 'NOT ready: ' + detail}; "
          "see `journalctl -u kiosk -b` for why the new version failed", file=sys.stderr)
    return 1
