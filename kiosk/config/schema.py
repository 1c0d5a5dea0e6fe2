"""The kiosk's one TOML configuration, as a schema: typed, validated once at start-up.

Each ``[section]`` is a dataclass below; field names are the TOML keys, the
``help`` metadata is what ``config/kiosk.example.toml`` documents; ``path=``
marks the keys that name files (``"file"``, ``"dir"`` or ``"any"``), ``pin=`` the
GPIO pins, ``secret=`` the references to secrets. Unknown keys are errors, so a
typo never silently falls back to a default.

Reading and checking a file against the schema is :mod:`kiosk.config.loading`;
writing TOML is :mod:`kiosk.config.editor`; what the config points at (files,
keys, devices, the broker URL) is :mod:`kiosk.config.preflight`.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import KioskValueError
from kiosk.wire import commands as wire_commands

VISIT_LOG_FIELDS = ("name", "birth_date", "id_number", "phone", "subject_id")  # what [ledger] visit_log_fields may name
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
    visit_log_fields: list[str] = _f([], help="Personal fields the visit log may keep: name, birth_date, id_number, "
                                     "phone, subject_id (a signed health declaration's subject and issuer, so a "
                                     "tracer can reach the person through the issuer).", items=VISIT_LOG_FIELDS)
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
    commands: list[str] = _f([], help="Inbound commands accepted on .../cmd/{name}: reload-trust, notice, update (a release for the root updater, kiosk-update.path).", items=wire_commands.NAMES)
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
    def base_dir(self) -> Path | None:
        """The config file's folder, where secret files named relatively are looked up (None: the working folder)."""
        return Path(self.source_path).parent if self.source_path else None

    @property
    def state_dir(self) -> Path:
        """``[device] state_dir``, resolved."""
        return self.resolve(self.device.state_dir)

    @property
    def ledger_path(self) -> Path:
        return self.resolve(self.ledger.path) if self.ledger.path else self.resolve(self.device.state_dir) / "ledger.sqlite3"


SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(Config)[f.name]
                             for f in dataclasses.fields(Config) if not f.metadata.get("internal")}


def _defaults(cls: type) -> Any:
    return cls(**{f.name: None for f in dataclasses.fields(cls) if is_required(f)})


def is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]


def path_keys() -> list[tuple[str, str]]:
    """(section, key) of every key that names a file or folder (``path=`` on the field)."""
    return [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
            if f.metadata.get("path")]


def required_keys() -> list[tuple[str, str]]:
    """(section, key) of every key without a default: what each kiosk's own config must give."""
    return [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls) if is_required(f)]


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
            default = None if is_required(f) else (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
            rows.append((section, f.name, default, f.metadata.get("help", "")))
    return rows
