"""Everything ``kiosk run`` checks before serving, as one report: ``kiosk config check`` is the same code.

The schema (:mod:`kiosk.config`) says whether each key is well-formed; this
module says whether what the keys point at works here: files readable and
parseable (size-capped, FIFOs and devices refused), the broker URL, TLS
material that loads, credential references, the pseudonym, device and
signature-checking keys, ``state_dir`` writable, the pin factory, the camera
and the code scanners. Every problem is found in one pass, each an error (the
kiosk will not start) or a warning (it starts, degraded or at risk), naming the
key and, where it can, the file and line.

``host=False`` leaves out what depends on the machine the kiosk will run on
(state_dir, GPIO, camera and scanner devices, systemd credentials): that is how
``kiosk provision`` and ``kiosk fleet`` validate a config for another machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import ssl
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from kiosk import config as kconfig
from kiosk.config import ERROR, WARNING, Config, ConfigError, Problem
from kiosk.secrets import CREDENTIAL_PREFIX, FileRefused, SecretError, read_capped, read_secret, secret_path

KEY_MAX_BYTES = 64 * 1024
TRUST_MAX_BYTES = 16 * 1024 * 1024
LIST_MAX_BYTES = 64 * 1024 * 1024
FONT_MAX_BYTES = 32 * 1024 * 1024
DEVICE_KEY_NAME = "device-key.pem"
AUDIO_FILES = ("welcome.wav", "see-guard.wav")


class PreflightError(ConfigError):
    """The kiosk must not start: ``problems`` holds every error (and the warnings) of the report."""


@dataclass
class Report:
    """The outcome of a preflight: the config (None when it could not be read) and every problem."""

    path: str
    config: Config | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """One line per problem, errors first: ``error: kiosk.toml:12: [mqtt] url: ...``."""
        return [f"{p.level}: {p}" for p in self.errors + self.warnings]

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return f"{self.path}: {e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"

    def raise_for_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            raise PreflightError(first.message, first.key, first.line, first.path, problems=self.problems)


def check_file(path: str | os.PathLike, host: bool = True, headless: bool = False) -> Report:
    """Read, validate and preflight a config file; never raises for anything the operator can fix."""
    path = str(path)
    try:
        text = kconfig.read_text(path)
    except ConfigError as exc:
        return Report(path, None, exc.problems)
    return check_text(text, path, host=host, headless=headless)


def check_text(text: str, path: str = "<config>", host: bool = True, headless: bool = False) -> Report:
    """The preflight of a config's TOML text (paths resolve against ``path``'s folder)."""
    cfg, problems = kconfig.collect(text, path)
    pf = _Preflight(cfg, text, path, host, headless, problems)
    pf.run()
    return Report(path, cfg, pf.problems)


class _Preflight:
    def __init__(self, cfg: Config, text: str, path: str, host: bool, headless: bool, problems: list[Problem]):
        self.cfg, self.text, self.path, self.host, self.headless = cfg, text, path, host, headless
        self.problems = list(problems)
        # A key whose value the schema refused holds its default now: checking it would mislead.
        self.refused = {p.key for p in problems}
        self.base = Path(path).parent if path and not path.startswith("<") else None

    # -- reporting -----------------------------------------------------------------

    def add(self, section: str, key: str, message: str, level: str = ERROR) -> None:
        self.problems.append(Problem(message, f"[{section}] {key}", kconfig.find_line(self.text, section, key),
                                     self.path, level))

    def warn(self, section: str, key: str, message: str) -> None:
        self.add(section, key, message, WARNING)

    def usable(self, section: str, key: str) -> bool:
        return f"[{section}] {key}" not in self.refused and f"[{section}]" not in self.refused

    def run(self) -> None:
        if any(p.key == "" and p.level == ERROR for p in self.problems):
            return  # not TOML at all: nothing else can be said
        for check in (self.trust, self.policy, self.ledger, self.device_key, self.mqtt, self.tracing, self.camera,
                      self.screen, self.audio):
            check()
        if self.host:
            for check in (self.state, self.signals, self.scanners):
                check()

    # -- helpers -------------------------------------------------------------------

    def file(self, section: str, key: str, value: str, max_bytes: int) -> bytes | None:
        """The bytes of a configured file, or None after reporting why not."""
        try:
            return read_capped(self.cfg.resolve(value), max_bytes, repr(value))
        except FileRefused as exc:
            self.add(section, key, str(exc))
            return None

    def secret(self, section: str, key: str, ref: str) -> Path | None:
        """The file behind a secret reference (path or credential:NAME), or None after reporting why not."""
        if ref.startswith(CREDENTIAL_PREFIX) and not self.host:
            return None  # a systemd credential of another machine: kiosk provision installs it there
        try:
            p = secret_path(ref, self.base)
            read_capped(p, KEY_MAX_BYTES, repr(ref))
            return p
        except (SecretError, FileRefused) as exc:
            self.add(section, key, str(exc))
            return None

    def public_key(self, section: str, key: str, value: str) -> None:
        from kiosk.wire.signing import SigningKeyError, load_public_key

        if not value or not self.usable(section, key):
            return
        if self.file(section, key, value, KEY_MAX_BYTES) is None:
            return
        try:
            load_public_key(self.cfg.resolve(value))
        except SigningKeyError as exc:
            self.add(section, key, str(exc).replace(str(self.cfg.resolve(value)), repr(value)))

    # -- the checks ----------------------------------------------------------------

    def trust(self) -> None:
        tc = self.cfg.trust
        if tc.paths and self.usable("trust", "paths"):
            readable = True
            for p in tc.paths:
                resolved = self.cfg.resolve(p)
                if resolved.is_dir():
                    continue
                if self.file("trust", "paths", p, TRUST_MAX_BYTES) is None:
                    readable = False
            if readable:
                from kiosk.trust.store import TrustStore

                try:
                    TrustStore.load([str(self.cfg.resolve(p)) for p in tc.paths])
                except (ValueError, OSError) as exc:
                    self.add("trust", "paths", str(exc))
        if tc.bundle and self.usable("trust", "bundle"):
            self.file("trust", "bundle", tc.bundle, TRUST_MAX_BYTES)
            if not tc.authority_key:
                self.add("trust", "bundle", "a trust bundle needs [trust] authority_key, the key it must be signed with")
        self.public_key("trust", "authority_key", tc.authority_key)

    def policy(self) -> None:
        ref = self.cfg.policy.revoked_file
        if ref and self.usable("policy", "revoked_file") and self.file("policy", "revoked_file", ref, LIST_MAX_BYTES) is not None:
            from kiosk.trust.revoked import load_revoked

            try:
                load_revoked(self.cfg.resolve(ref))
            except ValueError as exc:
                self.add("policy", "revoked_file", str(exc))

    def ledger(self) -> None:
        ref = self.cfg.ledger.pseudonym_key_file
        if not self.usable("ledger", "pseudonym_key_file"):
            return
        if ref:
            exists = ref.startswith(CREDENTIAL_PREFIX) or self.cfg.resolve(ref).exists()
        else:
            exists = (self.cfg.resolve(self.cfg.device.state_dir) / "pseudonym.key").exists()
        if not exists or (ref.startswith(CREDENTIAL_PREFIX) and not self.host):
            return  # made on first start, in a folder the state check looks at
        if ref and self.secret("ledger", "pseudonym_key_file", ref) is None:
            return
        from kiosk.trust.pseudonym import Pseudonyms

        try:
            Pseudonyms.load(self.cfg.ledger.pseudonym_key_file, state_dir=self.cfg.state_dir, resolve=self.cfg.resolve,
                            base=self.cfg.base_dir)  # reads, never creates: the key exists
        except (ValueError, OSError) as exc:
            self.add("ledger", "pseudonym_key_file", str(exc))

    def device_key(self) -> None:
        """The kiosk's telemetry signing key: made at provisioning, or at first start in state_dir."""
        from kiosk.wire.signing import SigningKeyError, load_private_key

        ref = self.cfg.device.key_file
        if not self.usable("device", "key_file"):
            return
        if not ref:
            path = self.cfg.resolve(self.cfg.device.state_dir) / DEVICE_KEY_NAME
            if not path.exists():
                return
            ref = str(path)
        elif not ref.startswith(CREDENTIAL_PREFIX) and not self.cfg.resolve(ref).exists():
            self.add("device", "key_file", f"{ref!r}: no such file (leave it empty and the kiosk makes one in state_dir "
                                           "at first start; `kiosk provision` makes one too)")
            return
        p = self.secret("device", "key_file", ref)
        if p is None:
            return
        try:
            load_private_key(str(p))
        except SigningKeyError as exc:
            self.add("device", "key_file", str(exc).replace(repr(str(p)), repr(self.cfg.device.key_file or str(p))))
            return
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            self.warn("device", "key_file", f"{self.cfg.device.key_file or str(p)!r} is readable by others "
                                            f"(mode {mode:04o}): chmod 600 it")

    def mqtt(self) -> None:
        mc = self.cfg.mqtt
        if not mc.enabled:
            return
        tls = False
        if self.usable("mqtt", "url"):
            tls = self._url(mc.url)
        if mc.password_file and self.usable("mqtt", "password_file"):
            if not mc.username:
                self.warn("mqtt", "password_file", "ignored: no [mqtt] username is set")
            elif not (mc.password_file.startswith(CREDENTIAL_PREFIX) and not self.host):
                try:
                    read_secret(mc.password_file, self.base)
                except SecretError as exc:
                    self.add("mqtt", "password_file", str(exc))
        if mc.username and mc.password_file and not tls and self.usable("mqtt", "url"):
            self.warn("mqtt", "url", "a user name and password over plain mqtt:// cross the network in the clear: "
                                     "use mqtts:// (TLS)")
        self._tls(tls)
        if mc.commands and not mc.centre_key:
            self.warn("mqtt", "commands", "every command will be refused: [mqtt] centre_key is not set")
        self.public_key("mqtt", "centre_key", mc.centre_key)

    def _url(self, url: str) -> bool:
        """Report what is wrong with the broker URL; True when it asks for TLS.

        A superset of what the publisher's ``parse_url`` refuses (the schema's
        pattern already fixed the scheme and forbids a path), without importing paho.
        """
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        if "@" in parts.netloc:
            self.add("mqtt", "url", "holds credentials: put the user name in [mqtt] username and the password in "
                                    "[mqtt] password_file, never in the URL")
            return tls
        try:
            port = parts.port
        except ValueError:
            m = re.search(r":([^:\]]*)$", parts.netloc)
            self.add("mqtt", "url", f"port {m.group(1) if m else '?'} is not a port number (1..65535)")
            return tls
        if not parts.hostname:
            self.add("mqtt", "url", f"{url!r} has no host name")
        elif port == 0:
            self.add("mqtt", "url", "port 0 is not a port number (1..65535)")
        return tls

    def _tls(self, tls: bool) -> None:
        mc = self.cfg.mqtt
        if mc.cert_file and not mc.key_file and self.usable("mqtt", "cert_file"):
            self.add("mqtt", "cert_file", "a client certificate needs its key: set [mqtt] key_file")
        if mc.key_file and not mc.cert_file and self.usable("mqtt", "key_file"):
            self.warn("mqtt", "key_file", "ignored: no [mqtt] cert_file is set")
        if (mc.ca_file or mc.cert_file) and not tls:
            self.warn("mqtt", "ca_file" if mc.ca_file else "cert_file",
                      "TLS settings with a plain mqtt:// URL: the kiosk will speak TLS to that port; use mqtts://")
        context = ssl.create_default_context()
        if mc.ca_file and self.usable("mqtt", "ca_file"):
            p = self.secret("mqtt", "ca_file", mc.ca_file)
            if p is not None:
                try:
                    context.load_verify_locations(cafile=str(p))
                except (ssl.SSLError, ValueError, OSError) as exc:
                    self.add("mqtt", "ca_file", f"{mc.ca_file!r}: not a CA certificate in PEM ({_ssl_reason(exc)})")
        if mc.cert_file and mc.key_file and self.usable("mqtt", "cert_file") and self.usable("mqtt", "key_file"):
            cert = self.secret("mqtt", "cert_file", mc.cert_file)
            key = self.secret("mqtt", "key_file", mc.key_file)
            if cert is not None and key is not None:
                try:
                    context.load_cert_chain(str(cert), str(key))
                except (ssl.SSLError, ValueError, OSError) as exc:
                    self.add("mqtt", "cert_file", f"{mc.cert_file!r} with key {mc.key_file!r} does not load "
                                                  f"({_ssl_reason(exc)}): a PEM certificate and its own unencrypted key")

    def tracing(self) -> None:
        self.public_key("tracing", "authority_key", self.cfg.tracing.authority_key)

    def camera(self) -> None:
        cc = self.cfg.camera
        if not self.usable("camera", "source"):
            return
        if cc.source == "picamera2":
            for key in ("width", "height"):
                if getattr(cc, key) % 2 and self.usable("camera", key):
                    self.add("camera", key, f"picamera2 needs an even {key}, got {getattr(cc, key)}")
            if self.host and not _importable("picamera2"):
                self.add("camera", "source", "picamera2 is not installed (apt install python3-picamera2); "
                                             "for a USB webcam use source = \"opencv\"")
        elif cc.source == "folder":
            if not cc.path:
                self.add("camera", "path", "a folder source needs the folder of images here")
                return
            folder = self.cfg.resolve(cc.path)
            from device.frames import IMAGE_SUFFIXES

            if not folder.is_dir():
                self.add("camera", "path", f"{cc.path!r}: no such folder")
            elif not any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir() if f.is_file()):
                self.add("camera", "path", f"{cc.path!r}: no images in it ({', '.join(IMAGE_SUFFIXES)})")
        elif cc.source == "opencv":
            if self.host and not _importable("cv2"):
                self.add("camera", "source", "OpenCV is not installed (apt install python3-opencv)")
            path = cc.path or "0"
            if path.isdigit():
                if self.host and not Path(f"/dev/video{path}").exists():
                    self.warn("camera", "path", f"/dev/video{path} is not present now (camera unplugged?): "
                                                "the kiosk starts and shows the camera as down until it appears")
            elif path.startswith("/dev/"):
                if self.host and not Path(path).exists():
                    self.warn("camera", "path", f"{path} is not present now (camera unplugged?)")
            elif not self.cfg.resolve(path).is_file():
                self.add("camera", "path", f"{path!r}: no such video file")

    def screen(self) -> None:
        sc = self.cfg.screen
        if sc.font and self.usable("screen", "font"):
            self.file("screen", "font", sc.font, FONT_MAX_BYTES)
        if self.host and sc.enabled and not self.headless and not _importable("pygame"):
            self.add("screen", "enabled", "pygame is not installed (apt install python3-pygame); "
                                          "or set enabled = false for a kiosk without a screen")

    def audio(self) -> None:
        ac = self.cfg.audio
        if not ac.enabled or not ac.directory or not self.usable("audio", "directory"):
            return
        folder = self.cfg.resolve(ac.directory)
        if not folder.is_dir():
            self.add("audio", "directory", f"{ac.directory!r}: no such folder")
            return
        for name in AUDIO_FILES:
            if not (folder / name).is_file():
                self.add("audio", "directory", f"{ac.directory!r} has no {name}")

    def state(self) -> None:
        """state_dir (and a ledger file elsewhere) must take a write, or be creatable."""
        if self.usable("device", "state_dir"):
            problem = _writable_folder(self.cfg.resolve(self.cfg.device.state_dir))
            if problem:
                self.add("device", "state_dir", f"{self.cfg.device.state_dir!r}: {problem}")
        if self.cfg.ledger.path and self.usable("ledger", "path"):
            p = self.cfg.resolve(self.cfg.ledger.path)
            if p.is_dir():
                self.add("ledger", "path", f"{self.cfg.ledger.path!r} is a folder: name the ledger file")
            elif p.exists() and not p.is_file():
                self.add("ledger", "path", f"{self.cfg.ledger.path!r} is not a regular file")
            else:
                problem = _writable_folder(p.parent)
                if problem:
                    self.add("ledger", "path", f"folder of {self.cfg.ledger.path!r}: {problem}")

    def signals(self) -> None:
        sc = self.cfg.signals
        if not self.usable("signals", "pin_factory"):
            return
        pins = [f for f in ("green_led", "red_led", "buzzer", "relay", "button", "status_led") if getattr(sc, f) is not None]
        if sc.pin_factory == "mock":
            return  # chosen on purpose (demo, a kiosk without GPIO): not a degraded state
        name = "lgpio" if sc.pin_factory == "auto" else sc.pin_factory
        problem = _pin_factory_problem(name)
        if problem is None:
            return
        if sc.pin_factory == "auto":
            if pins:
                self.warn("signals", "pin_factory", f"auto: {problem}; LEDs, buzzer, relay and button will be "
                                                    "SIMULATED (mock pins)")
        else:
            self.add("signals", "pin_factory", problem)

    def scanners(self) -> None:
        sc = self.cfg.scanner
        if sc.serial_port and self.usable("scanner", "serial_port"):
            if not _importable("serial"):
                self.add("scanner", "serial_port", "pyserial is not installed (pip install pyserial)")
            elif not os.path.exists(sc.serial_port):
                self.warn("scanner", "serial_port", f"{sc.serial_port} is not present now: the kiosk starts and "
                                                    "opens the scanner when it is plugged in")
        if sc.hid_device and self.usable("scanner", "hid_device"):
            if not _importable("evdev"):
                self.add("scanner", "hid_device", "python-evdev is not installed (apt install python3-evdev)")
            elif not os.path.exists(sc.hid_device):
                self.warn("scanner", "hid_device", f"{sc.hid_device} is not present now: the kiosk starts and "
                                                   "opens the scanner when it is plugged in")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _ssl_reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _pin_factory_problem(name: str, make: Callable | None = None) -> str | None:
    """Why gpiozero's pin factory ``name`` cannot be used here, or None when it opens."""
    from device.signals import make_pin_factory

    try:
        factory = (make or make_pin_factory)(name)
    except Exception as exc:  # ImportError off the Pi, lgpio.error without /dev/gpiochip*, SignalsError
        text = str(exc).replace("[signals] pin_factory ", "", 1)
        return text if text.startswith(repr(name)) else f"{name!r} cannot be used here: {text}"
    try:
        factory.close()
    except Exception:  # closing a probe must not turn into a finding
        pass
    return None


def _writable_folder(folder: Path) -> str | None:
    """Why the kiosk cannot write in ``folder`` (or create it), or None.

    A real write is tried (a temporary file, removed at once): permission bits
    alone lie for root and on read-only mounts.
    """
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return "cannot be created"
        probe = probe.parent
    if not probe.is_dir():
        return "is a file, not a folder" if probe == folder else f"cannot be created: {str(probe)!r} is a file"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        owner = ""
        if probe == folder and exc.errno == 13 and os.geteuid() != 0:
            owner = f" by this user (uid {os.geteuid()}); check as the kiosk's user or root"
        what = "is not writable" if probe == folder else f"cannot be created in {str(probe)!r}"
        return f"{what}{owner} ({exc.strerror})"
    return None
