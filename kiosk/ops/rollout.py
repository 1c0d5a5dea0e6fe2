"""``kiosk update rollout``: a release to a canary share of the fleet first, then the rest, by signed commands.

    kiosk update rollout --broker mqtts://broker:8883 --registry fleet.registry.json --key centre-key.pem \\
        --release kiosk-src-0.2.0.tar.gz --url https://centre.example/releases/kiosk-src-0.2.0.tar.gz \\
        --canary 10% --deadline 900

1. Reads the fleet's retained, signed ``info`` and ``health`` (checked with the registry's keys): who runs
   what, who is healthy now. Kiosks already on the release's version are left alone, so a second run
   only sends to those still behind.
2. Picks the canary: ``--canary`` (a share such as ``10%``, or a number of kiosks) of the kiosks that are
   behind, among those online and healthy now (a broken kiosk would fail for its own reasons); the pick is
   stable for a release (a hash of version and kiosk), so a rerun picks the same ones.
3. Sends each canary kiosk a signed ``update`` command (centre key; body: version, URL, SHA-256 of the
   release archive). On the kiosk it goes to the root updater, which checks it again and runs the safe
   update with rollback (``kiosk update --request``).
4. Waits, up to ``--deadline`` seconds, for every canary kiosk to come back healthy: a signed ``info``
   after the command with the new version, then a signed ``health`` after that one with the camera,
   ledger and display working and nothing degraded (``--allow-degraded WORD`` to accept one).
   A kiosk that refuses the command, rolls back (its info says the old version) or stays silent fails.
5. If any canary kiosk failed, it stops: the rest are never sent anything, the exit code is 1.
   Otherwise it sends the rest and waits for them the same way, and reports every kiosk that failed.

Exit codes: 0 every kiosk sent to came back healthy on the new version (or none was behind, or a dry
run), 1 a kiosk failed (the canary stopped the rollout, or some of the rest failed), 2 usage.
"""

from __future__ import annotations

import hashlib
import math
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kiosk.errors import KioskValueError
from kiosk.ops.fleet_watch import FleetWatch, Kiosk, KioskState, healthy

__all__ = ["FleetWatch", "Outcome", "Plan", "Rollout", "RolloutError", "canary_count", "healthy",
           "release_of_archive"]


class RolloutError(KioskValueError):
    """Bad options, an unusable release archive or key: exit 2 with the message."""


# -- the release ----------------------------------------------------------------------

_VERSION_LINE = re.compile(rb'^__version__\s*=\s*"([^"]+)"', re.M)


def release_of_archive(path: Path, url: str):
    """The :class:`~kiosk.wire.update.Release` of a project archive: its version, ``url`` and its SHA-256."""
    from kiosk.wire.update import BadRequest, release_of

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with tarfile.open(path, "r:*") as tar:
            names = [m for m in tar.getmembers() if m.isfile() and m.name.endswith("kiosk/__init__.py")
                     and m.name.count("/") <= 2]
            if not names:
                raise RolloutError(f"{path}: not the kiosk project (no kiosk/__init__.py)")
            found = _VERSION_LINE.search(tar.extractfile(min(names, key=lambda m: len(m.name))).read())
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise RolloutError(f"--release {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not found:
        raise RolloutError(f"{path}: kiosk/__init__.py names no __version__")
    try:
        return release_of({"version": found.group(1).decode(), "url": url, "sha256": digest})
    except BadRequest as exc:
        raise RolloutError(f"--release/--url: {exc}") from None


# -- the rollout ----------------------------------------------------------------------------

@dataclass
class Outcome:
    """How one kiosk did: back healthy on the new version, or why not."""

    site: str
    device: str
    ok: bool
    detail: str


@dataclass
class Plan:
    up_to_date: list[Kiosk]
    canary: list[Kiosk]
    rest: list[Kiosk]


def canary_count(spec: str, behind: int) -> int:
    """``10%`` of ``behind`` (rounded up) or a plain number; at least 1 when anyone is behind."""
    spec = spec.strip()
    try:
        n = math.ceil(behind * float(spec[:-1]) / 100) if spec.endswith("%") else int(spec)
    except ValueError:
        raise RolloutError(f"--canary {spec!r}: a share such as 10% or a number of kiosks") from None
    if n < 0 or spec.endswith("%") and not 0 < float(spec[:-1]) <= 100:
        raise RolloutError(f"--canary {spec!r}: between 0% and 100%, or a number of kiosks")
    return min(behind, max(1, n)) if behind else 0


class Rollout:
    """One release to ``kiosks``: the canary, then the rest; stops when the canary fails.

    ``clock`` measures the deadlines (tests pass one they move); the wait between checks is on the
    watch's condition, woken by every message, at most ``poll`` seconds.
    """

    def __init__(self, watch: FleetWatch, key, release, kiosks: list[Kiosk], canary: str = "10%",
                 deadline_s: float = 900.0, allow_degraded=(), clock: Callable[[], float] = time.monotonic,
                 out: Callable[[str], None] = print, poll: float = 0.05):
        self.watch, self.key, self.release = watch, key, release
        self.kiosks = sorted(set(kiosks))
        self.canary, self.deadline_s = canary, deadline_s
        self.allowed = frozenset(allow_degraded)
        self.clock, self.out, self.poll = clock, out, poll
        self.sent: dict[Kiosk, str] = {}  # every command sent: kiosk -> command id

    def _pick_order(self, k: Kiosk) -> str:
        return hashlib.sha256(f"{self.release.version}|{k[0]}/{k[1]}".encode()).hexdigest()

    def plan(self) -> Plan:
        """Who is up to date, who is the canary, who follows."""
        version = self.release.version
        up = [k for k in self.kiosks if self.watch.of(k).version == version]
        behind = [k for k in self.kiosks if k not in up]
        fit = [k for k in behind if self.watch.of(k).status != "offline"
               and healthy(self.watch.of(k).health, self.allowed)[0]]
        n = canary_count(self.canary, len(behind))
        if n and not fit:
            raise RolloutError(f"none of the {len(behind)} kiosk(s) behind is online and healthy now: "
                               "no canary can tell whether the release works")
        canary = sorted(sorted(fit, key=self._pick_order)[:n])
        rest = [k for k in behind if k not in canary]
        return Plan(up, canary, rest)

    def stage(self, name: str, kiosks: list[Kiosk]) -> list[Outcome]:
        """Send the command to ``kiosks`` and wait until each is back healthy on the new version, or fails."""
        version = self.release.version
        mark = self.watch.mark()
        ids = {}
        for k in kiosks:
            ids[k] = self.sent[k] = self.watch.send(k, self.key, self.release.body(), expires_in=self.deadline_s)
        self.out(f"rollout: {name}: sent {version} to {len(kiosks)} kiosk(s): "
                 + ", ".join(f"{s}/{d}" for s, d in kiosks))
        deadline = self.clock() + self.deadline_s
        done: dict[Kiosk, Outcome] = {}
        with self.watch.changed:
            while True:
                for k in kiosks:
                    if k not in done:
                        verdict = self._judge(k, ids[k], mark)
                        if verdict is not None:
                            done[k] = verdict
                            self.out(f"rollout: {name}: {k[0]}/{k[1]} {'ok' if verdict.ok else 'FAILED'}: "
                                     f"{verdict.detail}")
                if len(done) == len(kiosks):
                    break
                if self.clock() >= deadline:
                    for k in kiosks:
                        if k not in done:
                            done[k] = Outcome(*k, False, f"not back healthy on {version} within "
                                                         f"{self.deadline_s:g} s: {self._describe(k, mark)}")
                            self.out(f"rollout: {name}: {k[0]}/{k[1]} FAILED: {done[k].detail}")
                    break
                self.watch.changed.wait(self.poll)
        return [done[k] for k in kiosks]

    def _judge(self, k: Kiosk, command_id: str, mark: int) -> Outcome | None:
        """Caller holds the watch's lock. None: not decided yet."""
        s = self.watch.state.get(k) or KioskState()
        answer = s.results.get(command_id)
        if answer is not None and answer[0] != "ok":
            return Outcome(*k, False, f"refused the command: {answer[1]}")
        if s.version == self.release.version and s.info_n > mark and s.health_n > s.info_n:
            ok, wrong = healthy(s.health, self.allowed)
            if ok and s.status != "offline":
                return Outcome(*k, True, f"runs {s.version}, healthy")
        return None

    def _describe(self, k: Kiosk, mark: int) -> str:
        s = self.watch.of(k)
        if s.info_n <= mark:
            return f"no info since the command (last known version {s.version or 'none'})"
        if s.version != self.release.version:
            return f"came back on {s.version} (rolled back?)"
        ok, wrong = healthy(s.health if s.health_n > s.info_n else None, self.allowed)
        return f"on {s.version} but {wrong or 'offline'}"

    def run(self, dry_run: bool = False) -> int:
        """The whole rollout; the exit code."""
        version = self.release.version
        plan = self.plan()
        behind = len(plan.canary) + len(plan.rest)
        self.out(f"rollout: {version} ({self.release.sha256[:12]}…): {len(plan.up_to_date)} kiosk(s) already on it, "
                 f"{behind} behind; canary {len(plan.canary)}, then {len(plan.rest)}")
        if not behind:
            self.out("rollout: nothing to do")
            return 0
        if dry_run:
            self.out("rollout: dry run: canary " + ", ".join(f"{s}/{d}" for s, d in plan.canary)
                     + "; no command was sent")
            return 0
        canary = self.stage("canary", plan.canary)
        failed = [o for o in canary if not o.ok]
        if failed:
            self.out(f"rollout: STOPPED: {len(failed)} of {len(canary)} canary kiosk(s) did not come back healthy "
                     f"on {version}; the other {len(plan.rest)} kiosk(s) were not sent anything")
            return 1
        if not plan.rest:
            self.out(f"rollout: done: every kiosk runs {version}")
            return 0
        rest = self.stage("rest", plan.rest)
        failed = [o for o in rest if not o.ok]
        if failed:
            self.out(f"rollout: {len(failed)} of {len(rest)} kiosk(s) did not come back healthy on {version}: "
                     + ", ".join(f"{o.site}/{o.device}" for o in failed))
            return 1
        self.out(f"rollout: done: the canary and {len(rest)} more kiosk(s) run {version}")
        return 0
