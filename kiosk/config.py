"""The kiosk's one TOML configuration: typed, validated once at start-up.

Each ``[section]`` is a dataclass below; field names are the TOML keys, the
``help`` metadata is what ``config/kiosk.example.toml`` documents. Validation
happens before any hardware is touched and fails with one message naming the
key and, where it can be found, the line: ``kiosk.toml:12: [signals] grean_led:
unknown key``. Unknown keys are errors, so a typo never silently falls back to
a default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is the message for the operator."""

    def __init__(self, message: str, key: str = "", line: int | None = None, path: str | None = None):
        self.key, self.line, self.path = key, line, path
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{key + ': ' if key else ''}{message}")


def _f(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(kw_only=True)
class DeviceConfig:
    site: str = _f(example="hn-hoankiem", help="Site (district/organisation) id used in MQTT topics: checkin/v1/{site}/{device}/...", pattern=r"^[A-Za-z0-9_.-]+$")
    id: str = _f(example="kiosk-001", help="This kiosk's device id, unique within the site.", pattern=r"^[A-Za-z0-9_.-]+$")
    state_dir: str = _f("/var/lib/kiosk", help="Where the ledger and the device key live (systemd StateDirectory).")
    key_file: str = _f("", help="This kiosk's Ed25519 telemetry signing key: a file path or credential:NAME; empty = device-key.pem in state_dir (made at provisioning). Never in this file.", secret=True)


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
    paths: list[str] = _f([], help="Trusted signer certificates: PEM/DER files, folders of them, or trust-list JSON files.")
    max_age_days: int = _f(30, help="Warn the guard when the trust list is older than this.", min=1)
    bundle: str = _f("", help="Signed trust bundle file (kiosk trust build/sign); also received on the retained MQTT trust topic.")
    authority_key: str = _f("", help="The trust authority's Ed25519 public key (PEM) that bundles must be signed with.")
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
    revoked_file: str = _f("", help="File of revoked certificate/declaration identifiers (SHA-256 hex, one per line).")
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
    font: str = _f("", help="TTF font with Vietnamese glyphs; empty = find one on the system.")
    live_seconds: float = _f(1.5, help="Camera preview stays on screen this long after a code was last seen in it; 0 = never show the preview.", min=0.0)


@dataclass(kw_only=True)
class LedgerConfig:
    path: str = _f("", help="SQLite ledger file; empty = ledger.sqlite3 in device.state_dir.")
    pseudonym_key_file: str = _f("", help="Secret key for pseudonyms (keyed hash of identities); empty = created in state_dir on first start.")
    outbox_max: int = _f(100000, help="Most unsent event messages kept while offline; the oldest are dropped first (counted).", min=100)
    visit_log: bool = _f(False, help="Keep a visit log for contact tracing (off by default).")
    visit_log_fields: list[str] = _f([], help="Personal fields the visit log may keep: name, birth_date, id_number, phone.")
    retention_days: int = _f(21, help="Visit log entries older than this are purged.", min=1, max=365)


@dataclass(kw_only=True)
class MqttConfig:
    enabled: bool = _f(True, help="Publish telemetry to the central broker.")
    url: str = _f("mqtt://localhost:1883", help="Broker URL: mqtt://host:port or mqtts://host:port.", pattern=r"^mqtts?://[^/\s]+$")
    username: str = _f("", help="Broker user name.")
    password_file: str = _f("", help="Password: a file path, or credential:NAME for a systemd credential. Never logged.", secret=True)
    ca_file: str = _f("", help="CA certificate for TLS; empty = system CAs (mqtts only).")
    cert_file: str = _f("", help="Client certificate for TLS client authentication.")
    key_file: str = _f("", help="Client key: a file path or credential:NAME.", secret=True)
    keepalive: int = _f(30, help="MQTT keepalive in seconds.", min=5, max=3600)
    reconnect_min_seconds: float = _f(1.0, help="First reconnect delay.", min=0.1)
    reconnect_max_seconds: float = _f(60.0, help="Longest reconnect delay (exponential backoff).", min=1.0)
    events: bool = _f(True, help="Publish one message per check-in on .../events (no personal data).")
    counts_interval_seconds: float = _f(60.0, help="Republish counts at least this often.", min=1.0)
    counts_min_interval_seconds: float = _f(2.0, help="Publish counts on change at most this often.", min=0.0)
    health_interval_seconds: float = _f(60.0, help="Republish health (camera, frame rates, latency) at least this "
                                                   "often; a camera or clock change goes out at once.", min=1.0)
    commands: list[str] = _f([], help="Inbound commands accepted on .../cmd/{name}: reload-trust, notice.")
    centre_key: str = _f("", help="The centre's Ed25519 public key (PEM): commands must be signed with it; empty = every command refused.")
    command_max_age_seconds: float = _f(300.0, help="Signed commands older than this are refused as stale.", min=5.0)
    ha_discovery: bool = _f(False, help="Publish Home Assistant MQTT discovery for this kiosk.")


@dataclass(kw_only=True)
class TracingConfig:
    authority_key: str = _f("", help="The health authority's Ed25519 public key (PEM) that trace requests must be signed with; empty = every request refused.")
    request_max_age_seconds: float = _f(86400.0, help="Trace requests issued longer ago than this are refused as stale.", min=60.0)


@dataclass(kw_only=True)
class AudioConfig:
    enabled: bool = _f(False, help="Speak a short verdict (Mời vào / Welcome, Xin gặp bảo vệ / Please see the guard) for visitors who cannot see the screen.")
    directory: str = _f("", help="Folder of pre-recorded welcome.wav and see-guard.wav; empty = rendered with espeak-ng at start-up.")
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


def _find_line(text: str, section: str, key: str | None) -> int | None:
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
        return [_check_value(v, item, {}, key) for v in value]
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


def _build_section(name: str, cls: type, data: Any, text: str, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError("must be a table", key=f"[{name}]", line=_find_line(text, name, None), path=path)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown key (known: {', '.join(fields)})", key=f"[{name}] {key}",
                              line=_find_line(text, name, key), path=path)
        try:
            values[key] = _check_value(value, hints[key], dict(fields[key].metadata), key)
        except ConfigError as exc:
            raise ConfigError(str(exc), key=f"[{name}] {key}", line=_find_line(text, name, key), path=path) from None
    for fname, f in fields.items():
        if fname not in values and _required(f):
            raise ConfigError("required value missing", key=f"[{name}] {fname}", line=_find_line(text, name, None), path=path)
    return cls(**values)


def _cross_checks(cfg: Config, text: str, path: str) -> None:
    """Rules that span keys: one GPIO pin per device, readable files, known formats."""
    seen: dict[int, str] = {}
    for f in dataclasses.fields(SignalsConfig):
        pin = getattr(cfg.signals, f.name)
        if f.metadata.get("pin") and pin is not None:
            if pin in seen:
                raise ConfigError(f"GPIO {pin} is already used by [signals] {seen[pin]}", key=f"[signals] {f.name}",
                                  line=_find_line(text, "signals", f.name), path=path)
            seen[pin] = f.name
    from kiosk.codes import FORMAT_NAMES

    for fmt in cfg.policy.accept_formats:
        if fmt not in FORMAT_NAMES or fmt == "unknown":
            raise ConfigError(f"unknown format {fmt!r} (known: {', '.join(FORMAT_NAMES[:-1])})",
                              key="[policy] accept_formats", line=_find_line(text, "policy", "accept_formats"), path=path)
    files = [("trust", "paths", p) for p in cfg.trust.paths]
    files += [("policy", "revoked_file", cfg.policy.revoked_file), ("ledger", "pseudonym_key_file", cfg.ledger.pseudonym_key_file),
              ("mqtt", "ca_file", cfg.mqtt.ca_file), ("mqtt", "cert_file", cfg.mqtt.cert_file),
              ("mqtt", "password_file", cfg.mqtt.password_file), ("mqtt", "key_file", cfg.mqtt.key_file)]
    for section, key, value in files:
        if not value or value.startswith("credential:"):
            continue
        p = cfg.resolve(value)
        if key == "pseudonym_key_file" and not p.exists():
            continue  # created on first start
        if not (p.is_dir() if key == "paths" and p.is_dir() else os.access(p, os.R_OK) and p.is_file()):
            raise ConfigError(f"cannot read {str(p)!r}", key=f"[{section}] {key}", line=_find_line(text, section, key), path=path)
    _check_contents(cfg, text, path)
    for fld in cfg.ledger.visit_log_fields:
        if fld not in ("name", "birth_date", "id_number", "phone"):
            raise ConfigError(f"unknown personal field {fld!r} (allowed: name, birth_date, id_number, phone)",
                              key="[ledger] visit_log_fields", line=_find_line(text, "ledger", "visit_log_fields"), path=path)


def _check_contents(cfg: Config, text: str, path: str) -> None:
    """Readable is not enough: the trust list and revocation file must also parse."""
    if cfg.trust.paths:
        from kiosk.trust import TrustStore

        try:
            TrustStore.load([str(cfg.resolve(p)) for p in cfg.trust.paths])
        except ValueError as exc:
            raise ConfigError(str(exc), key="[trust] paths", line=_find_line(text, "trust", "paths"), path=path) from None
    if cfg.policy.revoked_file:
        from kiosk.policy import load_revoked

        try:
            load_revoked(cfg.resolve(cfg.policy.revoked_file))
        except ValueError as exc:
            raise ConfigError(str(exc), key="[policy] revoked_file", line=_find_line(text, "policy", "revoked_file"),
                              path=path) from None


def parse(text: str, path: str = "<config>") -> Config:
    """Validate TOML text into a :class:`Config`, or raise :class:`ConfigError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"not valid TOML: {exc}", line=int(m.group(1)) if m else None, path=path) from None
    sections = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown section (known: {', '.join(SECTIONS)})", key=f"[{name}]",
                              line=_find_line(text, name, None), path=path)
        sections[name] = _build_section(name, SECTIONS[name], value, text, path)
    for name in ("device", "venue"):
        if name not in sections:
            raise ConfigError("required section missing", key=f"[{name}]", path=path)
    cfg = Config(**sections, source_path=str(path))
    _cross_checks(cfg, text, path)
    return cfg


def load(path: str | os.PathLike) -> Config:
    """Read and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError("config file is not UTF-8 text", path=str(p)) from None
    return parse(text, str(p))


def describe() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, help) for every key: the source of the example config's comments."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = None if _required(f) else (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
            rows.append((section, f.name, default, f.metadata.get("help", "")))
    return rows


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


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
                out.append(f"{f.name} = {_toml_value(meta.get('example', ''))}")
            else:
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                out.append(f"# {f.name} = {_toml_value(default)}" if default is not None else f"# {f.name} =  (unset)")
        out.append("")
    return "\n".join(out)
