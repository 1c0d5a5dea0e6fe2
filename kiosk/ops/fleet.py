"""``kiosk fleet``: a fleet file (one row per kiosk) becomes what each kiosk's SD card needs on first boot,
the fleet registry of device keys, and the broker's password file and ACL.

    kiosk fleet fleet.csv --out fleet-out --bundle --ssh-key ~/.ssh/id_ed25519.pub

The fleet file is CSV (a header row) or TOML (``[defaults]`` plus ``[[device]]`` tables).
Columns: site, device, venue_id, venue_name, venue_qr (required); venue_address,
mqtt_url, mqtt_username, mqtt_password, hostname (optional); any ``section.key``
column sets that kiosk.toml key (e.g. ``signals.green_led``). Empty cells take the
defaults ([defaults] in TOML, or the options below). Each row's resulting kiosk.toml
is checked with the kiosk's own preflight (:mod:`kiosk.config.preflight`); every problem
is reported with its row, and nothing is written while one remains.

For each kiosk, OUT/SITE-DEVICE/ holds what goes onto the boot partition:
  kiosk/device.toml        the input of ``kiosk provision`` (holds the broker password and the
                           device key; deleted on first boot)
  kiosk/kiosk-src.tar.gz   the project (with --bundle)
  firstrun.sh + cmdline.txt.append   Raspberry Pi Imager-style first boot (Bookworm images)
  user-data, meta-data [, network-config]   cloud-init (images that use cloud-init)
and for the district:
  OUT/broker/passwd, acl, kiosk.conf   mosquitto: a user per kiosk, the centre and the tracer, topics per user
  the registry (--registry, default FLEET.registry.json): each kiosk's public key (for the centre)
Each kiosk's private key and generated broker password are kept in --secrets (default
FLEET.secrets/, 0700) so the next run gives the same kiosk the same key; so is the health
authority's public key (--authority-key, every kiosk's ``[tracing] authority_key``), so a later
run without the option still puts it on every card; --rotate makes
a new key (the old row is revoked), --revoke marks a lost kiosk's keys revoked and
removes its broker user. See docs/provisioning.md. Exit codes: 0 done, 2 a problem in
the fleet file or options.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import secrets as _random
import shlex
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import config as kconfig
from kiosk.errors import KioskValueError
from kiosk.ops import broker, provision
from kiosk.wire import registry

SOURCE = provision.SOURCE
BOOT = "/boot/firmware"
REQUIRED = ("site", "device", "venue_id", "venue_name", "venue_qr")
# fleet column -> (section, key) of kiosk.toml; the required columns are the schema's required keys.
COLUMNS = {
    "site": ("device", "site"), "device": ("device", "id"), "venue_id": ("venue", "id"),
    "venue_name": ("venue", "name"), "venue_address": ("venue", "address"), "venue_qr": ("venue", "qr_content"),
    "mqtt_url": ("mqtt", "url"), "mqtt_username": ("mqtt", "username"),
}
assert {COLUMNS[c] for c in REQUIRED} == set(kconfig.required_keys()), "fleet columns out of step with the schema"
SPECIAL = {"mqtt_password", "hostname"}
ID = re.compile(r"^[A-Za-z0-9_.-]+$")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Directories and files never put into the bundle.
BUNDLE_SKIP = {".git", ".venv", "__pycache__", ".pytest_cache", "checkin_kiosk.egg-info", "build", "dist", ".hypothesis"}
PASSWORD_FILE, ACL_FILE = "/etc/mosquitto/kiosk/passwd", "/etc/mosquitto/kiosk/acl"
AUTHORITY_KEY_FILE = "authority-sign.pub.pem"  # in --secrets: the key later runs keep putting on the cards


class FleetError(KioskValueError):
    """A problem in the fleet file or the options; exit 2 with the message (every row's problems)."""


@dataclass
class Kiosk:
    """One row of the fleet, ready to be written."""

    where: str  # "fleet.csv: line 3", for messages
    overrides: dict
    creds: dict
    hostname: str
    username: str
    password: str
    key: object = None  # Ed25519 private key, or None: the kiosk keeps the key it has
    notes: list[str] = field(default_factory=list)

    @property
    def site(self) -> str:
        return self.overrides["device"]["site"]

    @property
    def device(self) -> str:
        return self.overrides["device"]["id"]


def _cell(value: str):
    """A CSV cell as a TOML value when it reads as one (17, true, [..]), else the text."""
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value
    return parsed if not isinstance(parsed, (dict, str)) else value


def read_fleet(path: Path) -> tuple[list[dict], dict]:
    """(rows, defaults); each row maps column names to values, with its ``_line`` for messages."""
    from kiosk.secrets import FileRefused, read_capped

    try:
        text = read_capped(path, 64 * 1024 * 1024).decode("utf-8-sig")  # Excel writes a BOM
    except FileRefused as exc:
        raise FleetError(f"cannot read {exc}") from None
    except UnicodeDecodeError:
        raise FleetError(f"{path}: not UTF-8 text (export the spreadsheet as CSV UTF-8)") from None
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FleetError(f"{path}: not valid TOML: {exc}") from None
        unknown = set(data) - {"defaults", "device"}
        if unknown:
            raise FleetError(f"{path}: unknown table(s) {', '.join(sorted(unknown))} (expected [defaults] and [[device]])")
        if not isinstance(data.get("device", []), list) or not isinstance(data.get("defaults", {}), dict):
            raise FleetError(f"{path}: expected [defaults] and [[device]] tables")
        rows = [dict(r, _line=f"[[device]] #{i}") for i, r in enumerate(data.get("device", []), 1)]
        return rows, dict(data.get("defaults", {}))
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise FleetError(f"{path}: empty file")
    rows = []
    try:
        for n, row in enumerate(reader, start=2):
            if None in row:
                raise FleetError(f"{path}:{n}: more cells than header columns")
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            rows.append({k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
                        | {"_line": f"line {n}", "_csv": True})
    except csv.Error as exc:
        raise FleetError(f"{path}: not valid CSV: {exc}") from None
    return rows, {}


def device_settings(row: dict, defaults: dict, where: str) -> tuple[dict, dict, str]:
    """(kiosk.toml overrides, credentials, hostname) for one fleet row."""
    from_csv = row.get("_csv", False)
    merged = {**defaults, **{k: v for k, v in row.items() if k not in ("_line", "_csv")}}
    missing = [c for c in REQUIRED if not str(merged.get(c, "")).strip()]
    if missing:
        raise FleetError(f"{where}: missing {', '.join(missing)}")
    for c in ("site", "device"):
        if not ID.match(str(merged[c])):
            raise FleetError(f"{where}: {c} {merged[c]!r} may only hold letters, digits, '.', '_' and '-'")
        if str(merged[c]) in broker.RESERVED_IDS:
            raise FleetError(f"{where}: {c} {merged[c]!r} is reserved (a topic level of the fleet-wide "
                             f"{', '.join(sorted(broker.RESERVED_IDS))} topics)")
    overrides: dict[str, dict] = {}
    for column, value in merged.items():
        if column in SPECIAL:
            continue
        if column in COLUMNS:
            section, key = COLUMNS[column]
            value = str(value)
        elif "." in column:
            section, _, key = column.partition(".")
            if from_csv and isinstance(value, str):
                value = _cell(value)  # CSV has only text: "17" is a pin number, "true" a boolean
        else:
            raise FleetError(f"{where}: unknown column {column!r} (known: {', '.join([*COLUMNS, *SPECIAL])}, or section.key)")
        overrides.setdefault(section, {})[key] = value
    creds = {"mqtt_password": str(merged["mqtt_password"])} if merged.get("mqtt_password") else {}
    hostname = str(merged.get("hostname") or f"kiosk-{merged['site']}-{merged['device']}").lower().replace("_", "-").replace(".", "-")
    if not HOSTNAME.match(hostname):
        raise FleetError(f"{where}: hostname {hostname!r} is not a valid host name")
    return overrides, creds, hostname


def device_toml(overrides: dict, creds: dict, extra_creds: dict) -> str:
    """The per-device file ``kiosk provision --device-file`` reads (written with the config's TOML writer)."""
    order = ["device", "venue"] + [s for s in overrides if s not in ("device", "venue")]
    sections = {section: overrides[section] for section in order if section in overrides}
    all_creds = {**extra_creds, **creds}
    if all_creds:
        sections["credentials"] = all_creds
    return kconfig.dump_toml(sections, header=[
        "Per-device settings for kiosk provision --device-file, made by kiosk fleet.",
        "Holds the broker secret and the device key: deleted from the SD card after the first boot provisioned the kiosk."])


def check_row(kiosk: Kiosk, template: str, extra_creds: dict) -> list[str]:
    """The preflight's errors of the kiosk.toml this row becomes, as provisioning will write it."""
    overrides = json.loads(json.dumps(kiosk.overrides))  # a copy: provisioning's references are added to it
    creds = {**extra_creds, **kiosk.creds}
    try:
        provision.point_at_credentials(overrides, creds)
        text = provision.render_config(template, overrides)
        with tempfile.TemporaryDirectory(prefix="kiosk-fleet-") as empty_root:
            provision.validate(text, Path(empty_root), provision.staged_files(creds))
    except (provision.ProvisionError, kconfig.ConfigError) as exc:
        return [f"{kiosk.where}: {exc}"]
    return []


FIRSTBOOT = """#!/bin/sh
# Provision this Pi as a check-in kiosk from the boot partition (kiosk-firstboot.service).
set -eu
boot={boot}/kiosk
mkdir -p /opt/kiosk/src
tar -xzf "$boot/kiosk-src.tar.gz" -C /opt/kiosk/src
# Provisioning checks the device key and the config with the kiosk's own code, which needs cryptography.
export DEBIAN_FRONTEND=noninteractive
python3 -c "import cryptography" 2>/dev/null || {{ apt-get update -q && apt-get install -y -q --no-install-recommends python3-cryptography; }}
python3 /opt/kiosk/src/scripts/provision --source /opt/kiosk/src --device-file "$boot/device.toml"
# The device file holds the broker secret and the device key: they now live in /etc/credstore only.
rm -f "$boot/device.toml"
systemctl disable kiosk-firstboot.service
echo "kiosk-firstboot: provisioned; kiosk.service is running"
"""


def firstrun_sh(hostname: str, opts, firstboot_unit: str) -> str:
    """A Raspberry Pi Imager-style firstrun.sh: runs once, early, before the network is up."""
    q = shlex.quote
    parts = ["#!/bin/bash",
             f"# First boot of kiosk {hostname}, made by kiosk fleet. Started by systemd.run= in cmdline.txt;",
             "# sets the system up, installs kiosk-firstboot.service (which provisions once online) and removes itself.",
             "set +e",
             "CUSTOM=/usr/lib/raspberrypi-sys-mods/imager_custom",
             f"if [ -x \"$CUSTOM\" ]; then \"$CUSTOM\" set_hostname {q(hostname)}; else",
             f"  echo {q(hostname)} > /etc/hostname",
             f"  sed -i \"s/127.0.1.1.*/127.0.1.1\\t{hostname}/\" /etc/hosts",
             "fi"]
    if opts.admin_user:
        pw = opts.admin_password_hash or "*"
        parts += ["# The administrator account (no default 'pi' user on Bookworm).",
                  f"if [ -x /usr/lib/userconf-pi/userconf ]; then /usr/lib/userconf-pi/userconf {q(opts.admin_user)} {q(pw)}; else",
                  f"  id {q(opts.admin_user)} >/dev/null 2>&1 || useradd -m -G sudo -s /bin/bash {q(opts.admin_user)}",
                  f"  usermod -p {q(pw)} {q(opts.admin_user)}",
                  "fi"]
    if opts.ssh_key_text:
        parts += [f"if [ -x \"$CUSTOM\" ]; then \"$CUSTOM\" enable_ssh -k {q(opts.ssh_key_text)}; else",
                  f"  home=$(getent passwd {q(opts.admin_user or 'root')} | cut -d: -f6)",
                  "  install -d -m 700 \"$home/.ssh\"",
                  f"  echo {q(opts.ssh_key_text)} >> \"$home/.ssh/authorized_keys\"",
                  "  systemctl enable ssh",
                  "fi"]
    if opts.wifi_ssid:
        parts += [f"if [ -x \"$CUSTOM\" ]; then \"$CUSTOM\" set_wlan {q(opts.wifi_ssid)} {q(opts.wifi_password or '')} {q(opts.wifi_country)}; fi"]
    parts += [f"if [ -x \"$CUSTOM\" ]; then \"$CUSTOM\" set_timezone {q(opts.timezone)}; else",
              f"  ln -sf /usr/share/zoneinfo/{opts.timezone} /etc/localtime; echo {q(opts.timezone)} > /etc/timezone",
              "fi",
              "cat > /usr/local/sbin/kiosk-firstboot <<'KIOSK_FIRSTBOOT'",
              FIRSTBOOT.format(boot=BOOT).rstrip("\n"),
              "KIOSK_FIRSTBOOT",
              "chmod 0755 /usr/local/sbin/kiosk-firstboot",
              "cat > /etc/systemd/system/kiosk-firstboot.service <<'KIOSK_UNIT'",
              firstboot_unit.rstrip("\n"),
              "KIOSK_UNIT",
              "ln -sf /etc/systemd/system/kiosk-firstboot.service /etc/systemd/system/multi-user.target.wants/kiosk-firstboot.service",
              "# Run once: take ourselves out of cmdline.txt and off the card.",
              f"rm -f {BOOT}/firstrun.sh",
              f"sed -i 's| systemd.run.*||g' {BOOT}/cmdline.txt",
              "exit 0", ""]
    return "\n".join(parts)


CMDLINE_APPEND = f" systemd.run={BOOT}/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"


def _yaml_block(text: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.rstrip("\n").split("\n"))


def user_data(hostname: str, opts, firstboot_unit: str) -> str:
    """cloud-init #cloud-config doing what firstrun.sh does (JSON scalars are valid YAML)."""
    j = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    out = ["#cloud-config", f"# First boot of kiosk {hostname}, made by kiosk fleet.",
           f"hostname: {j(hostname)}", "manage_etc_hosts: true", f"timezone: {j(opts.timezone)}"]
    if opts.admin_user:
        out += ["users:", f"  - name: {j(opts.admin_user)}", "    groups: [sudo]", "    shell: /bin/bash"]
        if opts.admin_password_hash:
            out += ["    lock_passwd: false", f"    passwd: {j(opts.admin_password_hash)}"]
        else:
            out += ["    lock_passwd: true"]
        if opts.ssh_key_text:
            out += ["    ssh_authorized_keys:", f"      - {j(opts.ssh_key_text)}"]
    if opts.ssh_key_text:
        out += ["ssh_pwauth: false", "enable_ssh: true"]
    out += ["write_files:",
            "  - path: /usr/local/sbin/kiosk-firstboot", "    permissions: '0755'", "    content: |",
            _yaml_block(FIRSTBOOT.format(boot=BOOT), 6),
            "  - path: /etc/systemd/system/kiosk-firstboot.service", "    permissions: '0644'", "    content: |",
            _yaml_block(firstboot_unit, 6),
            "runcmd:",
            "  - [systemctl, daemon-reload]",
            "  - [systemctl, enable, --now, --no-block, kiosk-firstboot.service]", ""]
    return "\n".join(out)


def network_config(opts) -> str | None:
    if not opts.wifi_ssid:
        return None
    j = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    return "\n".join(["network:", "  version: 2", "  wifis:", "    wlan0:", "      dhcp4: true",
                      f"      regulatory-domain: {j(opts.wifi_country)}", "      access-points:",
                      f"        {j(opts.wifi_ssid)}:", f"          password: {j(opts.wifi_password or '')}",
                      "      optional: true", ""])


def make_bundle(source: Path, dest: Path) -> None:
    """The project as a tar.gz (what kiosk-firstboot unpacks into /opt/kiosk/src)."""
    def keep(info: tarfile.TarInfo):
        parts = Path(info.name).parts
        if any(p in BUNDLE_SKIP or p.endswith(".pyc") for p in parts):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(dest, "w:gz") as tar:
        for name in ("pyproject.toml", "README.md", "kiosk", "device", "scripts", "systemd", "config", "docs"):
            p = source / name
            if p.exists():
                tar.add(p, arcname=name, filter=keep)


def write(path: Path, text: str | bytes, mode: int) -> None:
    """Write a file created with ``mode`` from the start (secrets are never briefly readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)



# --- keys, passwords and the registry --------------------------------------------

def _kiosk_id(text: str) -> tuple[str, str]:
    site, sep, device = text.partition("/")
    if not sep or not ID.match(site) or not ID.match(device):
        raise FleetError(f"{text!r}: expected SITE/DEVICE")
    return site, device


class SecretStore:
    """Each kiosk's private device key and generated broker password, kept between runs (0700/0600)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _dir(self, site: str, device: str) -> Path:
        return self.folder / f"{site}-{device}"

    def device_key(self, site: str, device: str):
        from kiosk.wire import signing

        p = self._dir(site, device) / "device-key.pem"
        return signing.load_private_key(str(p)) if p.is_file() else None

    def save_device_key(self, site: str, device: str, key) -> None:
        from kiosk.wire import signing

        self._prepare(site, device)
        signing.write_private_key(self._dir(site, device) / "device-key.pem", key)

    def password(self, site: str, device: str) -> str | None:
        p = self._dir(site, device) / "mqtt-password"
        return p.read_text(encoding="utf-8").strip() if p.is_file() else None

    def save_password(self, site: str, device: str, password: str) -> None:
        self._prepare(site, device)
        write(self._dir(site, device) / "mqtt-password", password + "\n", 0o600)

    def authority_key(self) -> str | None:
        """The health authority's public key (PEM) an earlier run was given, or None."""
        p = self.folder / AUTHORITY_KEY_FILE
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def save_authority_key(self, pem: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        write(self.folder / AUTHORITY_KEY_FILE, pem, 0o644)  # public: readable, but in the fleet's own folder

    def _prepare(self, site: str, device: str) -> None:
        for d in (self.folder, self._dir(site, device)):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)


def assign_keys(kiosks: list[Kiosk], entries: list[registry.Entry], store: SecretStore,
                rotate: set[tuple[str, str]]) -> list[registry.Entry]:
    """Give every kiosk its device key and broker password; the registry rows that result.

    A kiosk keeps the key it has (from the secret store) unless rotated; a kiosk the
    registry knows but whose key is not in the store keeps the key installed on it
    (its device file carries none).
    """
    from kiosk.wire import signing

    entries = list(entries)
    for k in kiosks:
        known = registry.active(entries, k.site, k.device)
        key = None if (k.site, k.device) in rotate else store.device_key(k.site, k.device)
        revoked_kids = {e.kid for e in entries if e.kiosk == (k.site, k.device) and e.revoked}
        if key is not None and signing.kid_of(key.public_key()) in revoked_kids:
            key = None  # a revoked key never comes back: the kiosk (or its replacement) gets a new one
        if key is not None and known and signing.kid_of(key.public_key()) not in {e.kid for e in known}:
            raise FleetError(f"{k.where}: the device key in {store.folder} is not the one the registry holds for "
                             f"{k.site}/{k.device}; use --rotate {k.site}/{k.device} to replace it")
        if key is None and known and (k.site, k.device) not in rotate:
            k.notes.append(f"keeps its installed key {known[-1].kid} (not in {store.folder})")
        else:
            if key is None:
                key = signing.generate_key()
                for e in known:  # rotation: the old key may no longer sign
                    e.revoked = True
                k.notes.append(f"new device key {signing.kid_of(key.public_key())}"
                               + (f", {', '.join(e.kid for e in known)} revoked" if known else ""))
            k.key = key
            if not known or (k.site, k.device) in rotate:
                entries.append(registry.entry_for(k.site, k.device, k.overrides["venue"]["id"], key))
        for e in registry.active(entries, k.site, k.device):
            e.venue_id = k.overrides["venue"]["id"]  # a kiosk moved to another venue keeps its key
        if "mqtt_password" in k.creds:
            k.password = k.creds["mqtt_password"]
        else:
            k.password = store.password(k.site, k.device) or _random.token_urlsafe(24)
            k.creds["mqtt_password"] = k.password
    return entries


def revoke(entries: list[registry.Entry], kiosks: set[tuple[str, str]]) -> list[str]:
    """Mark every key of the named kiosks revoked; what was done, one line each."""
    done = []
    for site, device in sorted(kiosks):
        rows = registry.active(entries, site, device)
        if not rows and not any(e.kiosk == (site, device) for e in entries):
            raise FleetError(f"--revoke {site}/{device}: not in the registry")
        for e in rows:
            e.revoked = True
        done.append(f"{site}/{device}: revoked {', '.join(e.kid for e in rows) or '(already revoked)'}; "
                    "its broker user is gone from the generated password file and ACL")
    return done


# --- the command ------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("fleet", help="fleet file: .csv (header row) or .toml ([defaults] + [[device]])")
    p.add_argument("--out", default="fleet-out", help="output folder (default fleet-out)")
    p.add_argument("--registry", help="the fleet registry JSON to update (default: FLEET.registry.json beside the fleet file)")
    p.add_argument("--secrets", help="where each kiosk's private key and generated password are kept between runs "
                                     "(default: FLEET.secrets/ beside the fleet file)")
    p.add_argument("--rotate", action="append", default=[], metavar="SITE/DEVICE", help="give this kiosk a new device key (repeatable)")
    p.add_argument("--revoke", action="append", default=[], metavar="SITE/DEVICE",
                   help="a lost kiosk: revoke its keys, drop its broker user, write no card for it (repeatable)")
    p.add_argument("--centre-user", default="centre", help="the centre's broker user (default centre)")
    p.add_argument("--centre-password-file", help="the centre's broker password (default: generated into OUT/broker/centre-password)")
    p.add_argument("--tracer-user", default="tracer",
                   help="the health authority's broker user: trace requests and answers only (default tracer)")
    p.add_argument("--tracer-password-file",
                   help="the tracer's broker password (default: generated into OUT/broker/tracer-password)")
    p.add_argument("--template", help="config template (default: SOURCE/config/kiosk.example.toml)")
    p.add_argument("--bundle", action="store_true", help="also pack this checkout as kiosk/kiosk-src.tar.gz into every device folder")
    p.add_argument("--mqtt-url", help="default broker URL for rows without mqtt_url")
    p.add_argument("--mqtt-ca-file", help="CA certificate of the broker, put into every device file")
    p.add_argument("--authority-key", metavar="FILE",
                   help="the health authority's public signing key (authority-sign.pub.pem from `kiosk trace keygen`): "
                        "every kiosk's [tracing] authority_key; kept in --secrets, so later runs keep it")
    p.add_argument("--ssh-key", help="public key file allowed to log in over SSH")
    p.add_argument("--admin-user", help="administrator account to create (Bookworm has no default user)")
    p.add_argument("--admin-password-hash", help="its password hash (`openssl passwd -6`); none = key login only")
    p.add_argument("--wifi-ssid", help="Wi-Fi network (leave out for Ethernet)")
    p.add_argument("--wifi-password")
    p.add_argument("--wifi-country", default="VN", help="Wi-Fi regulatory country (default VN)")
    p.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    p.add_argument("--source", default=str(SOURCE), help="project to bundle (default: this checkout)")


def _text(path: str, what: str) -> str:
    from kiosk.secrets import FileRefused, read_capped

    try:
        return read_capped(path, 1024 * 1024).decode("utf-8")
    except FileRefused as exc:
        raise FleetError(f"{what}: cannot read {exc}") from None
    except UnicodeDecodeError:
        raise FleetError(f"{what} {path}: not UTF-8 text") from None


def read_kiosks(opts, template: str, extra_creds: dict) -> list[Kiosk]:
    """Every row of the fleet file, checked; FleetError naming each bad row (all of them)."""
    rows, defaults = read_fleet(Path(opts.fleet))
    if opts.mqtt_url:
        defaults.setdefault("mqtt_url", opts.mqtt_url)
    if not rows:
        raise FleetError(f"{opts.fleet}: no devices")
    kiosks, seen, hosts, problems = [], {}, {}, []
    for row in rows:
        where = f"{opts.fleet}: {row['_line']}"
        try:
            overrides, creds, hostname = device_settings(row, defaults, where)
        except FleetError as exc:
            problems.append(str(exc))
            continue
        key = (overrides["device"]["site"], overrides["device"]["id"])
        if key in seen:
            problems.append(f"{where}: device {key[0]}/{key[1]} already on {seen[key]}")
            continue
        if hostname in hosts:
            problems.append(f"{where}: hostname {hostname} already used on {hosts[hostname]}")
            continue
        seen[key], hosts[hostname] = row["_line"], row["_line"]
        # Every kiosk logs in as itself: the ACL is per user.
        username = overrides.setdefault("mqtt", {}).setdefault("username", f"{key[0]}-{key[1]}")
        kiosk = Kiosk(where, overrides, creds, hostname, username, creds.get("mqtt_password", ""))
        probe = Kiosk(where, overrides, {"mqtt_password": "x", **creds}, hostname, username, "")
        problems += check_row(probe, template, extra_creds)
        kiosks.append(kiosk)
    users = [k.username for k in kiosks]
    for name in sorted({u for u in users if users.count(u) > 1}):
        problems.append(f"{opts.fleet}: broker user {name!r} is given to more than one kiosk")
    if opts.centre_user in users:
        problems.append(f"{opts.fleet}: broker user {opts.centre_user!r} is the centre's (--centre-user)")
    if opts.tracer_user in users:
        problems.append(f"{opts.fleet}: broker user {opts.tracer_user!r} is the tracer's (--tracer-user)")
    for option, name in (("--centre-user", opts.centre_user), ("--tracer-user", opts.tracer_user)):
        if not name or ":" in name or "\n" in name:  # a line of mosquitto's password file
            problems.append(f"{option} {name!r}: a broker user name is not empty and has no ':' or line break")
    if opts.tracer_user == opts.centre_user:
        problems.append(f"--tracer-user {opts.tracer_user!r} is the centre's user: the tracer gets its own, "
                        "limited to trace topics")
    if problems:
        raise FleetError("\n".join(problems))
    return kiosks


def authority_key(opts, store: SecretStore) -> tuple[str | None, str]:
    """(the authority's public key PEM for every card or None, a line saying where it came from).

    ``--authority-key`` is checked (an Ed25519 public key, never the private signing key); without
    it, the key an earlier run kept is used, so adding a kiosk later never drops tracing from a card.
    """
    from kiosk.wire import signing

    kept = store.authority_key()
    if not opts.authority_key:
        if kept is None:
            return None, ""
        kid = signing.kid_of(signing.public_key_from_pem(kept.encode(), str(store.folder / AUTHORITY_KEY_FILE)))
        return kept, f"authority key {kid} (kept in {store.folder}) in every device file"
    try:
        pem = provision.authority_public_pem(_text(opts.authority_key, "--authority-key"),
                                             f"--authority-key {opts.authority_key}")
    except provision.ProvisionError as exc:
        raise FleetError(str(exc)) from None
    kid = signing.kid_of(signing.public_key_from_pem(pem.encode()))
    if kept is not None and kept != pem:
        old = signing.kid_of(signing.public_key_from_pem(kept.encode()))
        return pem, (f"authority key {kid} replaces {old} in every device file: kiosks provisioned before trust "
                     f"{old} until their new device file is installed")
    return pem, f"authority key {kid} in every device file"


def run(opts) -> int:
    fleet_path = Path(opts.fleet)
    opts.ssh_key_text = _text(opts.ssh_key, "--ssh-key").strip() if opts.ssh_key else ""
    extra_creds = {"mqtt_ca": _text(opts.mqtt_ca_file, "--mqtt-ca-file")} if opts.mqtt_ca_file else {}
    source = Path(opts.source).resolve()
    try:
        unit = (source / "systemd" / "kiosk-firstboot.service").read_text()
    except OSError:
        raise FleetError(f"--source {source}: not the kiosk project (no systemd/kiosk-firstboot.service)") from None
    template = provision.read_template(Path(opts.template) if opts.template else source / "config" / "kiosk.example.toml")
    rotate = {_kiosk_id(t) for t in opts.rotate}
    revoked = {_kiosk_id(t) for t in opts.revoke}
    registry_path = Path(opts.registry) if opts.registry else fleet_path.with_name(fleet_path.stem + ".registry.json")
    store = SecretStore(Path(opts.secrets) if opts.secrets else fleet_path.with_name(fleet_path.stem + ".secrets"))
    authority, authority_note = authority_key(opts, store)
    if authority is not None:
        extra_creds["authority_key"] = authority  # every row is checked with the key file it will name
    entries = registry.load(registry_path, missing_ok=True)
    centre_password = (_text(opts.centre_password_file, "--centre-password-file").strip()
                       if opts.centre_password_file else None)
    tracer_password = (_text(opts.tracer_password_file, "--tracer-password-file").strip()
                       if opts.tracer_password_file else None)
    kiosks = [k for k in read_kiosks(opts, template, extra_creds) if (k.site, k.device) not in revoked]
    # Everything is checked: from here on, files are written.
    notes = revoke(entries, revoked)
    entries = assign_keys(kiosks, entries, store, rotate)
    if authority is not None:
        if store.authority_key() != authority:
            store.save_authority_key(authority)
        notes.append(authority_note)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = None
    if opts.bundle:
        bundle = out / "kiosk-src.tar.gz"
        make_bundle(source, bundle)
    from kiosk.wire import signing

    net = network_config(opts)
    for k in kiosks:
        if k.key is not None:
            store.save_device_key(k.site, k.device, k.key)
            k.creds["device_key"] = signing.private_pem(k.key).decode("ascii")
        if store.password(k.site, k.device) != k.password:
            store.save_password(k.site, k.device, k.password)
        folder = out / f"{k.site}-{k.device}"
        write(folder / "kiosk" / "device.toml", device_toml(k.overrides, k.creds, extra_creds), 0o600)
        if bundle:
            write(folder / "kiosk" / "kiosk-src.tar.gz", bundle.read_bytes(), 0o644)
        write(folder / "firstrun.sh", firstrun_sh(k.hostname, opts, unit), 0o755)
        write(folder / "cmdline.txt.append", CMDLINE_APPEND, 0o644)
        write(folder / "user-data", user_data(k.hostname, opts, unit), 0o600)
        write(folder / "meta-data", f"instance-id: {k.hostname}\nlocal-hostname: {k.hostname}\n", 0o644)
        if net:
            write(folder / "network-config", net, 0o600)
        print(f"{folder}: {k.hostname} ({k.overrides['venue']['name']}){'; ' + '; '.join(k.notes) if k.notes else ''}")
    centre_password = centre_password or _generated_password(out, "centre-password")
    tracer_password = tracer_password or _generated_password(out, "tracer-password")
    users = [broker.BrokerUser(opts.centre_user, centre_password),
             broker.BrokerUser(opts.tracer_user, tracer_password, role="tracer")]
    users += [broker.BrokerUser(k.username, k.password, k.site, k.device) for k in kiosks]
    write(out / "broker" / "passwd", broker.password_file(users), 0o600)
    write(out / "broker" / "acl", broker.acl_file(users), 0o644)
    write(out / "broker" / "kiosk.conf", broker.mosquitto_conf(PASSWORD_FILE, ACL_FILE), 0o644)
    write(registry_path, registry.dumps(entries), 0o644)
    for line in notes:
        print(line)
    print(f"fleet: {len(kiosks)} kiosk(s) in {out}{'' if bundle else ' (no --bundle: add kiosk/kiosk-src.tar.gz yourself)'}; "
          f"registry {registry_path} ({sum(not e.revoked for e in entries)} active key(s)); broker files in {out / 'broker'}")
    return 0


def _generated_password(out: Path, name: str) -> str:
    """A generated broker password (the centre's, the tracer's), kept in OUT/broker/NAME (0600) between runs."""
    p = out / "broker" / name
    if p.is_file():
        return p.read_text(encoding="utf-8").strip()
    password = _random.token_urlsafe(24)
    write(p, password + "\n", 0o600)
    return password
