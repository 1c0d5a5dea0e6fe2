"""The kiosk's self-check behind ``kiosk doctor``: one :class:`Finding` per check.

Each check answers one question an installer asks at the entrance (does the
camera deliver frames? can the broker hear us?) with pass, warn or fail and,
when not pass, what to do about it. Checks never raise: a missing library or a
module another stage has not shipped yet is itself a failed check.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

from kiosk.doctor.finding import FAIL, PASS, WARN, Check, Context, Finding



def _registry() -> dict[str, Check]:
    from kiosk.doctor import broker, hardware, system

    return {
        "camera": hardware.check_camera,
        "decode": hardware.check_decode,
        "gpio": hardware.check_gpio,
        "display": hardware.check_display,
        "broker": broker.check_broker,
        "clock": system.check_clock,
        "trust": system.check_trust,
        "disk": system.check_disk,
        "ledger": system.check_ledger,
    }


CHECK_NAMES = ("config", "camera", "decode", "gpio", "display", "broker", "clock", "trust", "disk", "ledger")


def check_config(path: Path) -> tuple[Finding, object | None]:
    """The config's preflight, as ``kiosk run`` does it; the other checks need a valid config.

    Errors fail the check; warnings (a password over plain mqtt://, a scanner not
    plugged in, mock pins standing in for real ones) make it a warning, all listed.
    """
    from kiosk import config as kconfig
    from kiosk.config.preflight import check_file

    report = check_file(path)
    if not report.ok:
        try:  # a config the schema accepts still lets the other checks say more about the hardware
            cfg = kconfig.load(path)
        except kconfig.ConfigError:
            cfg = None
        return Finding("config", FAIL, "; ".join(str(p) for p in report.errors + report.warnings),
                       f"fix the keys named above, then re-check with `kiosk config check {path}`"), cfg
    cfg = report.config
    what = f"{path}: site {cfg.device.site}, device {cfg.device.id}, venue {cfg.venue.name}"
    if report.warnings:
        return Finding("config", WARN, what + "; " + "; ".join(str(p) for p in report.warnings),
                       "see each warning; `kiosk config check` lists them one a line"), cfg
    return Finding("config", PASS, what), cfg


def run_checks(config_path: str | Path, only: list[str] | None = None, broker_timeout: float = 5.0,
               camera_timeout: float = 5.0) -> list[Finding]:
    """Run the checks (all, or those named in ``only``) in a fixed order."""
    path = Path(config_path)
    started = time.monotonic()
    first, cfg = check_config(path)
    findings = [Finding(**{**first.to_dict(), "seconds": round(time.monotonic() - started, 3)})]
    wanted = [n for n in CHECK_NAMES[1:] if not only or n in only]
    if cfg is None:
        if wanted:
            findings.append(Finding("other checks", WARN, f"not run ({', '.join(wanted)}): they need a valid config",
                                    "fix the config first"))
        return findings
    ctx = Context(cfg, path, broker_timeout=broker_timeout, camera_timeout=camera_timeout)
    checks = _registry()
    for name in wanted:
        t0 = time.monotonic()
        try:
            finding = checks[name](ctx)
        except Exception as exc:  # a bug in a check must not hide the other answers
            log.debug("check %s crashed", name, exc_info=True)
            finding = Finding(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                              "report this with the output of `kiosk -vv doctor`")
        findings.append(Finding(**{**finding.to_dict(), "seconds": round(time.monotonic() - t0, 3)}))
    return findings


def worst(findings: list[Finding]) -> str:
    """fail if any failed, else warn if any warned, else pass."""
    statuses = {f.status for f in findings}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS
