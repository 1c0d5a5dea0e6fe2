"""The kiosk's one TOML configuration: typed, validated once at start-up.

Each ``[section]`` is a dataclass below; field names are the TOML keys, the
``help`` metadata is what ``config/kiosk.example.toml`` documents; ``path=``
marks the keys that name files (``"file"``, ``"dir"`` or ``"any"``), ``pin=`` the
GPIO pins, ``secret=`` the references to secrets. Every problem is reported at
once, each naming the key and, where it can be found, the line: ``kiosk.toml:12:
[signals] grean_led: unknown key``. Unknown keys are errors, so a typo never
silently falls back to a default.

This module is the schema (types, ranges, names, rules between keys) and the
one TOML writer (:func:`toml_value`, :func:`dump_toml`, :func:`edit_toml`);
:mod:`kiosk.preflight` adds what the config points at (files, keys, devices,
the broker URL), and is what both ``kiosk config check`` and ``kiosk run`` use.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import KioskValueError

COMMAND_NAMES = ("reload-trust", "notice", "update")  # inbound commands a kiosk knows ([mqtt] commands)
VISIT_LOG_FIELDS = ("name", "birth_date", "id_number", "phone")  # what [ledger] visit_log_fields may name
CONFIG_MAX_BYTES = 1024 * 1024
ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """One finding about a config: an error (the kiosk will not start) or a warning.

    ``str()`` is the operator's line: ``kiosk.toml:12: [signals] grean_led: unknown key``.
    """

    message: str
    key: str = ""  # "[section] key", "[section]" or "" for the file itself
    line: int | None = None
    path: str | None = None
    level: str = ERROR

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.key + ': ' if self.key else ''}{self.message}"


class ConfigError(KioskValueError):
    """A configuration problem; ``str()`` is the message for the operator.

    ``problems`` holds every error found (the message is the first one's, plus a count).
    """

    def __init__(self, message: str, key: str = "", line: int | None = None, path: str | None = None,
                 problems: list[Problem] | None = None):
        self.key, self.line, self.path = key, line, path
        first = Problem(message, key, line, path)
        self.problems = list(problems) if problems else [first]
        more = len([p for p in self.problems if p.level == ERROR]) - 1
        super().__init__(str(first) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""))

    @classmethod
    def of(cls, problems: list[Problem]) -> "ConfigError":
        errors = [p for p in problems if p.level == ERROR]
        first = errors[0]
        return cls(first.message, first.key, first.line, first.path, problems=errors)


def _f(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(kw_only=True)
class DeviceConfig:
    site: str = _f(example="hn-hoankiem", help="Site (district/organisation) id used in MQTT topics: checkin/v1/{site}/{device}/...", pattern=r"^[A-Za-z0-9_.-]+$")
    id: str = _f(example="kiosk-001", help="This kiosk's device id, unique within the site.", pattern=r"^[A-Za-z0-9_.-]+$")
    state_dir: str = _f("/var/lib/kiosk", help="Where the ledger and the device key live (systemd StateDirectory).", path="dir")
    key_file: str = _f("", help="This kiosk's Ed25519 telemetry signing key: a file path or credential:NAME; empty = device-key.pem in state_dir (made at provisioning). Never in this file.", secret=True, path="file")


@dataclass(kw_only=True)
class VenueConfig:
    id: str = _f(example="HN-HK-000123", help="Venue id as registered with the authority.")
    name: str = _f(example="Nhà sách Tràng Tiền", help="Venue name shown on the screen.")
    address: str = _f("", help="Venue address shown on the screen.")
    province: str = _f("", help="Province or city (Vietnamese name), e.g. Thành phố Hà Nội; published in info.")
    district: str = _f("", help="District (quận/huyện), e.g. Quận Hoàn Kiếm; published in info.")
    ward: str = _f("", help="Ward or commune (phường/xã), e.g. Phường Tràng Tiền; published in info.")
    province_code: str = _f("", help="Official administrative code of the province (optional).")
    district_code: str = _f("", help="Official administrative code of the district (optional).")
    ward_code: str = _f("", help="Official administrative code of the ward (optional).")
    qr_content: str = _f(example="https://qr.tokhaiyte.vn/venue/HN-HK-000123", help="Exact content of the venue QR code shown on the idle screen, as provisioned.")
    language: str = _f("vi+en", help="Screen language: vi, en, or vi+en (both).", choices=("vi", "en", "vi+en"))


@dataclass(kw_only=True)
class CameraConfig:
    source: str = _f("picamera2", help="Frame source: picamera2, opencv (USB webcam or video file), folder (images), none.",
                     choices=("picamera2", "opencv", "folder", "none"))
    path: str = _f("", help="opencv: device index (\"0\") or video file; folder: directory of images.")
    width: int = _f(640, help="Frame width in pixels (decode resolution).", min=160, max=4096)
    height: int = _f(480, help="Frame height in pixels.", min=120, max=4096)
    fps: int = _f(30, help="Requested capture rate.", min=1, max=120)
    rearm_seconds: float = _f(3.0, help="The same code in view is reported again only after this long, or once it left the view.", min=0.0)
    replay_fps: float = _f(0.0, help="folder/video replay rate; 0 = as fast as decoding allows.", min=0.0)
    loop: bool = _f(False, help="Replay a folder or video forever instead of stopping at its end.")
    intake_max: int = _f(64, help="Most camera codes waiting for a verdict; beyond it new camera codes are dropped (counted; the visitor is simply read again). USB scanner lines are never dropped.", min=1, max=10000)


@dataclass(kw_only=True)
class ScannerConfig:
    serial_port: str = _f("", help="USB CDC (serial) code scanner device, e.g. /dev/ttyACM0; empty = none.")
    serial_baud: int = _f(9600, help="Serial scanner baud rate.", min=1200)
    hid_device: str = _f("", help="Keyboard-wedge (HID) scanner input device, e.g. /dev/input/by-id/...-event-kbd; empty = none.")


@dataclass(kw_only=True)
class TrustConfig:
    paths: list[str] = _f([], help="Trusted signer certificates: PEM/DER files, folders of them, or trust-list JSON files.", path="any")
    max_age_days: int = _f(30, help="Warn the guard when the trust list is older than this.", min=1)
    bundle: str = _f("", help="Signed trust bundle file (kiosk trust build/sign); also received on the retained MQTT trust topic.", path="file")
    authority_key: str = _f("", help="The trust authority's Ed25519 public key (PEM) that bundles must be signed with.", path="file")
    max_age_hours: int = _f(0, help="Reject signed codes with trust-stale when the trust bundle is older than this many hours; 0 = never.", min=0)


@dataclass(kw_only=True)
class PolicyConfig:
    accept_formats: list[str] = _f(["eu-dcc", "health-declaration", "pc-covid", "cccd"],
                                   help="Code formats this venue accepts.")
    accept_unsigned: bool = _f(True, help="Accept codes that carry no verifiable signature (PC-Covid, CCCD): only their format is checked.")
    accept_statuses: list[str] = _f(["green"], help="Health-declaration statuses accepted.")
    dcc_types: list[str] = _f(["vaccination", "test", "recovery"], help="EU DCC certificate types accepted.")
    vaccination_complete: bool = _f(True, help="DCC vaccination: require the last dose of the series (dn >= sd).")
    vaccination_min_days: int = _f(14, help="DCC vaccination: days since the last dose before it counts.", min=0)
    vaccination_max_days: int = _f(0, help="DCC vaccination: days after the last dose it stops counting; 0 = never.", min=0)
    test_max_hours: int = _f(72, help="DCC test: maximum age of the sample in hours.", min=1)
    test_negative_only: bool = _f(True, help="DCC test: accept only negative results.")
    recovery_max_days: int = _f(180, help="DCC recovery: days after the first positive test it stays valid.", min=1)
    clock_skew_seconds: int = _f(300, help="Tolerance for issued-at/not-before against the kiosk clock.", min=0)
    duplicate_window_minutes: float = _f(30.0, help="The same person inside this window is a duplicate, counted once.", min=0.0)
    duplicates_accepted: bool = _f(True, help="Let a visitor already checked in inside the window through again (shown as 'Already checked in', never counted twice).")
    revoked_file: str = _f("", help="File of revoked certificate/declaration identifiers (SHA-256 hex, one per line).", path="file")
    unsigned_opens_door: bool = _f(False, help="Open the door for unsigned codes (PC-Covid, CCCD) as for verified ones. Off: they are checked in and counted, the door stays shut and the guard is told to check the ID card.")
    override_window_seconds: float = _f(60.0, help="The guard's override lets in the last rejected visitor only within this many seconds of the reject, and only while no later verdict came in.", min=1.0)
    dcc_products: list[str] = _f([], help="EU DCC vaccination: accepted medicinal products (mp codes); empty = any.")
    dcc_manufacturers: list[str] = _f([], help="EU DCC vaccination: accepted manufacturers (ma codes); empty = any.")


@dataclass(kw_only=True)
class SignalsConfig:
    pin_factory: str = _f("auto", help="gpiozero pin factory: lgpio (Pi), mock (no hardware), auto (lgpio, falling back to mock with a warning).",
                          choices=("auto", "lgpio", "rpigpio", "native", "mock"))
    green_led: int | None = _f(None, help="BCM pin of the green (accept) LED.", pin=True)
    red_led: int | None = _f(None, help="BCM pin of the red (reject) LED.", pin=True)
    buzzer: int | None = _f(None, help="BCM pin of the buzzer.", pin=True)
    relay: int | None = _f(None, help="BCM pin of the door relay, pulsed on accept; unset = no door.", pin=True)
    button: int | None = _f(None, help="BCM pin of the guard's override button; unset = none.", pin=True)
    status_led: int | None = _f(None, help="BCM pin of the status LED (heartbeat, blinks when MQTT or camera is down).", pin=True)
    led_seconds: float = _f(2.0, help="How long the verdict LED stays on.", min=0.05)
    beep_seconds: float = _f(0.12, help="Length of one beep.", min=0.01)
    relay_seconds: float = _f(1.0, help="Door relay pulse length.", min=0.05)
    relay_active_high: bool = _f(True, help="Door relay board switches on a high pin; false for the common active-low relay boards.")


@dataclass(kw_only=True)
class ScreenConfig:
    enabled: bool = _f(True, help="Draw the kiosk screen (pygame). Off = headless, verdicts only logged.")
    size: str = _f("auto", help="Window size WxH, or auto (the display's own size, full screen).", pattern=r"^(auto|\d{2,5}x\d{2,5})$")
    fullscreen: bool = _f(True, help="Full screen with the mouse cursor hidden.")
    fps: int = _f(15, help="Maximum redraw rate; drawing never blocks scanning.", min=1, max=60)
    verdict_seconds: float = _f(2.0, help="How long the accept/reject screen stays before going back to idle.", min=0.2)
    show_name: str = _f("masked", help="Visitor's name on the verdict screen: masked (Nguyễn V. A.), full, or none.",
                        choices=("masked", "full", "none"))
    font: str = _f("", help="TTF font with Vietnamese glyphs; empty = find one on the system.", path="file")
    live_seconds: float = _f(1.5, help="Camera preview stays on screen this long after a code was last seen in it; 0 = never show the preview.", min=0.0)


@dataclass(kw_only=True)
class LedgerConfig:
    path: str = _f("", help="SQLite ledger file; empty = ledger.sqlite3 in device.state_dir.", path="file")
    pseudonym_key_file: str = _f("", help="Secret key for pseudonyms (keyed hash of identities); empty = created in state_dir on first start.", path="file")
    outbox_max: int = _f(100000, help="Most unsent event messages kept while offline; the oldest are dropped first (counted).", min=100)
    visit_log: bool = _f(False, help="Keep a visit log for contact tracing (off by default).")
    visit_log_fields: list[str] = _f([], help="Personal fields the visit log may keep: name, birth_date, id_number, phone.", items=VISIT_LOG_FIELDS)
    retention_days: int = _f(21, help="Visit log entries older than this are purged.", min=1, max=365)


@dataclass(kw_only=True)
class MqttConfig:
    enabled: bool = _f(True, help="Publish telemetry to the central broker.")
    url: str = _f("mqtt://localhost:1883", help="Broker URL: mqtt://host:port or mqtts://host:port.", pattern=r"^mqtts?://[^/\s]+$")
    username: str = _f("", help="Broker user name.")
    password_file: str = _f("", help="Password: a file path, or credential:NAME for a systemd credential. Never logged.", secret=True, path="file")
    ca_file: str = _f("", help="CA certificate for TLS; empty = system CAs (mqtts only).", path="file")
    cert_file: str = _f("", help="Client certificate for TLS client authentication.", path="file")
    key_file: str = _f("", help="Client key: a file path or credential:NAME.", secret=True, path="file")
    keepalive: int = _f(30, help="MQTT keepalive in seconds.", min=5, max=3600)
    reconnect_min_seconds: float = _f(1.0, help="First reconnect delay.", min=0.1)
    reconnect_max_seconds: float = _f(60.0, help="Longest reconnect delay (exponential backoff).", min=1.0)
    events: bool = _f(True, help="Publish one message per check-in on .../events (no personal data).")
    counts_interval_seconds: float = _f(60.0, help="Republish counts at least this often.", min=1.0)
    counts_min_interval_seconds: float = _f(2.0, help="Publish counts on change at most this often.", min=0.0)
    health_interval_seconds: float = _f(60.0, help="Republish health (camera, frame rates, latency) at least this "
                                                   "often; a camera or clock change goes out at once.", min=1.0)
    commands: list[str] = _f([], help="Inbound commands accepted on .../cmd/{name}: reload-trust, notice, update (a release for the root updater, kiosk-update.path).", items=COMMAND_NAMES)
    centre_key: str = _f("", help="The centre's Ed25519 public key (PEM): commands must be signed with it; empty = every command refused.", path="file")
    command_max_age_seconds: float = _f(300.0, help="Signed commands older than this are refused as stale.", min=5.0)
    ha_discovery: bool = _f(False, help="Publish Home Assistant MQTT discovery for this kiosk.")


@dataclass(kw_only=True)
class TracingConfig:
    authority_key: str = _f("", help="The health authority's Ed25519 public key (PEM) that trace requests must be signed with; empty = every request refused.", path="file")
    request_max_age_seconds: float = _f(86400.0, help="Trace requests issued longer ago than this are refused as stale.", min=60.0)


@dataclass(kw_only=True)
class AudioConfig:
    enabled: bool = _f(False, help="Speak a short verdict (Mời vào / Welcome, Xin gặp bảo vệ / Please see the guard) for visitors who cannot see the screen.")
    directory: str = _f("", help="Folder of pre-recorded welcome.wav and see-guard.wav; empty = rendered with espeak-ng at start-up.", path="dir")
    volume: float = _f(0.8, help="Playback volume, 0 to 1.", min=0.0, max=1.0)


@dataclass(kw_only=True)
class Config:
    device: DeviceConfig
    venue: VenueConfig
    camera: CameraConfig = field(default_factory=lambda: _defaults(CameraConfig))
    scanner: ScannerConfig = field(default_factory=lambda: _defaults(ScannerConfig))
    trust: TrustConfig = field(default_factory=lambda: _defaults(TrustConfig))
    policy: PolicyConfig = field(default_factory=lambda: _defaults(PolicyConfig))
    signals: SignalsConfig = field(default_factory=lambda: _defaults(SignalsConfig))
    screen: ScreenConfig = field(default_factory=lambda: _defaults(ScreenConfig))
    ledger: LedgerConfig = field(default_factory=lambda: _defaults(LedgerConfig))
    mqtt: MqttConfig = field(default_factory=lambda: _defaults(MqttConfig))
    tracing: TracingConfig = field(default_factory=lambda: _defaults(TracingConfig))
    audio: AudioConfig = field(default_factory=lambda: _defaults(AudioConfig))
    source_path: str = field(default="", metadata={"internal": True})

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        if not p.is_absolute() and self.source_path:
            p = Path(self.source_path).parent / p
        return p

    @property
    def ledger_path(self) -> Path:
        return self.resolve(self.ledger.path) if self.ledger.path else self.resolve(self.device.state_dir) / "ledger.sqlite3"


SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(Config)[f.name]
                             for f in dataclasses.fields(Config) if not f.metadata.get("internal")}


def _defaults(cls: type) -> Any:
    return cls(**{f.name: None for f in dataclasses.fields(cls) if _required(f)})


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]


def _find_line(text: str, section: str | None, key: str | None) -> int | None:
    """Best-effort line of ``[section] key`` in the TOML text (tomllib keeps no positions)."""
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if re.match(rf"^\s*\[\s*{re.escape(section)}\s*\]", line):
            start = i
            break
    if start is None:
        return None
    if key is None:
        return start + 1
    for j in range(start + 1, len(lines)):
        if re.match(r"^\s*\[", lines[j]):
            break
        if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", lines[j]):
            return j + 1
    return start + 1


def _type_name(t: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(t, str(t))


def _check_value(value: Any, ftype: Any, meta: dict, key: str) -> Any:
    origin = typing.get_origin(ftype)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ftype) if a is not type(None)]
        if value is None:
            return None
        return _check_value(value, args[0], meta, key)
    if origin is list:
        (item,) = typing.get_args(ftype)
        if not isinstance(value, list):
            raise ConfigError(f"expected a list of {_type_name(item)}s, got {type(value).__name__}")
        items = [_check_value(v, item, {}, key) for v in value]
        if "items" in meta:
            for v in items:
                if v not in meta["items"]:
                    raise ConfigError(f"unknown name {v!r} (known: {', '.join(meta['items'])})")
        return items
    if ftype is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}")
    elif ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}")
        value = float(value)
    elif ftype is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}")
        if "\0" in value:
            raise ConfigError("must not contain a NUL character")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"must be one of {', '.join(meta['choices'])}, got {value!r}")
    if "pattern" in meta and not re.match(meta["pattern"], value):
        raise ConfigError(f"{value!r} is not in the expected form")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"must be at least {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"must be at most {meta['max']}, got {value!r}")
    if meta.get("pin") and value is not None and not 0 <= value <= 27:
        raise ConfigError(f"BCM GPIO pin must be 0..27, got {value!r}")
    return value


class _Collector:
    """Gathers every problem of one config text, each with its key, file and line."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.problems: list[Problem] = []

    def add(self, message: str, section: str | None = None, key: str | None = None, level: str = ERROR) -> None:
        name = "" if section is None else f"[{section}] {key}" if key else f"[{section}]"
        line = _find_line(self.text, section, key) if section else None
        self.problems.append(Problem(message, name, line, self.path, level))


def _build_section(name: str, cls: type, data: Any, out: _Collector) -> Any:
    """The section's dataclass; a bad value is reported and its default used, so checking goes on."""
    if not isinstance(data, dict):
        out.add("must be a table", name)
        data = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            out.add(f"unknown key (known: {', '.join(fields)})", name, key)
            continue
        try:
            values[key] = _check_value(value, hints[key], dict(fields[key].metadata), key)
        except ConfigError as exc:
            out.add(exc.problems[0].message, name, key)
    for fname, f in fields.items():
        if fname not in values and _required(f):
            out.add("required value missing", name, fname)
            values[fname] = ""
    return cls(**values)


SCREEN_MIN, SCREEN_MAX = (160, 120), 10000


def screen_size(text: str) -> tuple[int, int] | None:
    """``WxH`` as numbers; None for ``auto``."""
    if text == "auto":
        return None
    w, _, h = text.partition("x")
    return int(w), int(h)


def _cross_checks(cfg: Config, out: _Collector) -> None:
    """Rules that span keys or need more than a type: one GPIO pin per device, known formats, sizes."""
    seen: dict[int, str] = {}
    for f in dataclasses.fields(SignalsConfig):
        pin = getattr(cfg.signals, f.name)
        if f.metadata.get("pin") and pin is not None:
            if pin in seen:
                out.add(f"GPIO {pin} is already used by [signals] {seen[pin]}", "signals", f.name)
            else:
                seen[pin] = f.name
    from kiosk.codes import FORMAT_NAMES

    for fmt in cfg.policy.accept_formats:
        if fmt not in FORMAT_NAMES or fmt == "unknown":
            out.add(f"unknown format {fmt!r} (known: {', '.join(FORMAT_NAMES[:-1])})", "policy", "accept_formats")
    size = screen_size(cfg.screen.size) if re.match(r"^(auto|\d+x\d+)$", cfg.screen.size) else None
    if size is not None:
        (w, h), (min_w, min_h) = size, SCREEN_MIN
        if not (min(w, h) >= min(min_w, min_h) and max(w, h) >= max(min_w, min_h) and max(w, h) <= SCREEN_MAX):
            out.add(f"{cfg.screen.size!r} is not a usable screen size (at least {min_w}x{min_h} or {min_h}x{min_w}, "
                    f"at most {SCREEN_MAX} a side)", "screen", "size")
    if cfg.ledger.visit_log_fields and not cfg.ledger.visit_log:
        out.add("has no effect while [ledger] visit_log = false", "ledger", "visit_log_fields", level=WARNING)


def collect(text: str, path: str = "<config>") -> tuple[Config, list[Problem]]:
    """Every schema problem of a TOML text at once, and the config built from the valid values.

    Bad values are replaced by their defaults in the returned config (missing
    required strings by ""), so the checks that follow can still look at the
    rest; callers must treat a config with errors as invalid.
    """
    out = _Collector(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        out.problems.append(Problem(f"not valid TOML: {exc}", "", int(m.group(1)) if m else None, path))
        data = None
    sections: dict[str, Any] = {}
    if data is not None:
        for name, value in data.items():
            if name not in SECTIONS:
                out.add(f"unknown section (known: {', '.join(SECTIONS)})", name)
                continue
            sections[name] = _build_section(name, SECTIONS[name], value, out)
        for name in ("device", "venue"):
            if name not in sections:
                out.problems.append(Problem("required section missing", f"[{name}]", None, path))
    for name in ("device", "venue"):
        if name not in sections:
            sections[name] = SECTIONS[name](**{f.name: "" for f in dataclasses.fields(SECTIONS[name]) if _required(f)})
    cfg = Config(**sections, source_path=str(path))
    if data is not None:
        _cross_checks(cfg, out)
    return cfg, out.problems


def parse(text: str, path: str = "<config>") -> Config:
    """Validate TOML text into a :class:`Config`, or raise :class:`ConfigError` (holding every error).

    This is the schema only (types, ranges, known keys); what the config points
    at (files, keys, devices, the broker URL) is checked by :mod:`kiosk.preflight`.
    """
    cfg, problems = collect(text, path)
    if any(p.level == ERROR for p in problems):
        raise ConfigError.of(problems)
    return cfg


def read_text(path: str | os.PathLike) -> str:
    """A config file's text: a regular UTF-8 file of at most 1 MiB, else :class:`ConfigError`."""
    from kiosk.secrets import FileRefused, read_capped

    try:
        data = read_capped(path, CONFIG_MAX_BYTES)
    except FileRefused as exc:
        raise ConfigError(f"cannot read config file: {str(exc)[len(str(path)) + 2:] or exc}", path=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config file is not UTF-8 text", path=str(path)) from None


def load(path: str | os.PathLike) -> Config:
    """Read and validate a config file (the schema; see :mod:`kiosk.preflight` for the rest)."""
    return parse(read_text(path), str(path))


def path_keys() -> list[tuple[str, str]]:
    """(section, key) of every key that names a file or folder (``path=`` on the field)."""
    return [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
            if f.metadata.get("path")]


def required_keys() -> list[tuple[str, str]]:
    """(section, key) of every key without a default: what each kiosk's own config must give."""
    return [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls) if _required(f)]


def field_meta(section: str, key: str) -> dict:
    """The schema's metadata of ``[section] key`` (help, path, secret, pin, ...); {} when unknown."""
    cls = SECTIONS.get(section)
    for f in dataclasses.fields(cls) if cls else ():
        if f.name == key:
            return dict(f.metadata)
    return {}


def describe() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, help) for every key: the source of the example config's comments."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = None if _required(f) else (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
            rows.append((section, f.name, default, f.metadata.get("help", "")))
    return rows


def toml_value(value: Any) -> str:
    """One TOML value: the config holds only strings, numbers, booleans and flat lists of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes (\\ \" \n \t \uXXXX) are all valid in TOML basic strings.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def dump_toml(sections: dict[str, dict[str, Any]], header: list[str] = ()) -> str:
    """``[section]`` tables of ``key = value`` lines, after ``header`` comment lines: the one TOML writer."""
    lines = [f"# {h}" if h else "#" for h in header]
    for section, values in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else json.dumps(key, ensure_ascii=False)


def edit_toml(template: str, overrides: dict[str, dict[str, Any]]) -> str:
    """The template's text with ``[section] key`` set to each override, comments kept.

    Edits lines rather than re-serialising, so the documentation of
    config/kiosk.example.toml stays in a provisioned kiosk.toml for whoever opens
    it on the device. A key shown commented out (``# key = default``) is replaced in place.
    """
    lines = template.splitlines()
    for section, values in overrides.items():
        for key, value in values.items():
            new = f"{_toml_key(key)} = {toml_value(value)}"
            start = next((i for i, ln in enumerate(lines) if re.match(rf"^\s*\[\s*{re.escape(section)}\s*\]\s*$", ln)), None)
            if start is None:
                lines += ["", f"[{section}]"]
                start = len(lines) - 1
            end = next((j for j in range(start + 1, len(lines)) if re.match(r"^\s*\[", lines[j])), len(lines))
            pattern = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=")
            hit = next((j for j in range(start + 1, end) if pattern.match(lines[j])), None)
            if hit is not None:
                lines[hit] = new
            else:
                # After the section's last non-blank line, so the blank separator stays.
                at = end
                while at > start + 1 and not lines[at - 1].strip():
                    at -= 1
                lines.insert(at, new)
    text = "\n".join(lines) + "\n"
    data = tomllib.loads(text)
    for section, values in overrides.items():
        for key, value in values.items():
            if data.get(section, {}).get(key) != value:
                raise ConfigError("could not be set in the template", key=f"[{section}] {key}")
    return text


def example_toml() -> str:
    """The documented example config: every key, its help, its default (commented out when optional)."""
    out = ["# Check-in kiosk configuration: every key, documented.",
           "# Generated by `kiosk config example` from kiosk/config.py; validate with `kiosk config check FILE`.",
           "# Keys shown commented out are optional and show their default.",
           "# Paths are relative to this file's folder. Secrets (password_file, key_file) take a file path",
           "# or credential:NAME for a systemd credential (LoadCredential=); their values are never logged.", ""]
    for section, cls in SECTIONS.items():
        out.append(f"[{section}]")
        for f in dataclasses.fields(cls):
            meta = f.metadata
            help_ = meta.get("help", "")
            if "choices" in meta and "one of" not in help_:
                help_ += f" One of: {', '.join(meta['choices'])}."
            out.append(f"# {help_}")
            if _required(f):
                out.append(f"{f.name} = {toml_value(meta.get('example', ''))}")
            else:
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                out.append(f"# {f.name} = {toml_value(default)}" if default is not None else f"# {f.name} =  (unset)")
        out.append("")
    return "\n".join(out)
