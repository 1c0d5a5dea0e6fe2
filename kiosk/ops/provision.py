"""``kiosk provision``: turn a fresh Raspberry Pi OS Lite (Bookworm or later, 64-bit) into a check-in kiosk.

    sudo kiosk provision --device-file device.toml          # or scripts/provision, before any venv exists
    sudo kiosk provision --site hn-hoankiem --device-id gate-01 --venue-id HN-HK-000123 \\
         --venue-name "Nhà sách Tràng Tiền" --venue-qr "https://..." \\
         --mqtt-url mqtts://broker.example.vn:8883 --mqtt-username gate-01 --mqtt-password-file pw.txt

What it does, each step only when needed (a second run changes nothing and says so):
  1. apt packages the kiosk takes from Raspberry Pi OS (picamera2, OpenCV, pygame, ...);
  2. the groups and the ``kiosk`` system user;
  3. a release venv (--system-site-packages) under /opt/kiosk/releases/, the project
     installed into it, and /opt/kiosk/venv pointing at it (``kiosk update`` switches it later);
  4. /etc/kiosk/kiosk.toml from config/kiosk.example.toml with this device's values,
     checked with the kiosk's own preflight (:mod:`kiosk.config.preflight`) before anything is written;
  5. broker secrets and the kiosk's Ed25519 device key into /etc/credstore/kiosk-mqtt/
     (root only, 0600) for LoadCredential=; the device key's public half in /etc/kiosk/, and
     the health authority's public key there too when given ([tracing] authority_key);
  6. journald kept in RAM (no log files on the SD card);
  7. kiosk.service installed, enabled, and (re)started when something changed.

``--dry-run`` prints every action and changes nothing. ``--root DIR`` writes the files
into the tree DIR instead of /; steps that need a running system there (apt, useradd,
the venv, systemctl) are printed as skipped. Exit codes: 0 done, 1 a step failed,
2 bad options or an invalid resulting config.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from kiosk import config as kconfig
from kiosk.errors import KioskOSError, KioskValueError

# The checkout this package was imported from (scripts/provision, a clone); an installed
# package has no systemd/ or config/ beside it, so --source must then be given.
SOURCE = Path(__file__).resolve().parent.parent.parent

# What Raspberry Pi OS provides through apt (matching scripts/pi-stack-requirements*.txt);
# the venv sees them through --system-site-packages.
APT_BASE = [
    "python3-venv", "python3-pip", "python3-picamera2", "python3-opencv", "python3-numpy",
    "python3-pygame", "python3-lgpio", "python3-evdev",
    "fonts-dejavu-core", "systemd-timesyncd", "python3-cryptography", "mosquitto-clients",
]
# ZBar by release: trixie renamed the library for the 64-bit time_t transition (libzbar0t64; asking for
# libzbar0 there fails the whole apt-get install) and has no python3-pyzbar (pip installs pyzbar, a base
# dependency). A release not named here is taken to be newer than trixie.
ZBAR_PACKAGES = {"bookworm": ("libzbar0", "python3-pyzbar"), "trixie": ("libzbar0t64",)}
RELEASES = tuple(ZBAR_PACKAGES)


def apt_packages(codename: str) -> list[str]:
    """The apt packages a kiosk on Raspberry Pi OS (Debian) ``codename`` needs."""
    return APT_BASE + list(ZBAR_PACKAGES.get(codename, ZBAR_PACKAGES["trixie"]))


def os_codename(root: Path = Path("/")) -> str:
    """VERSION_CODENAME of the system in ``root`` (/etc/os-release); '' when it does not say."""
    try:
        text = (root / "etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    m = re.search(r'^VERSION_CODENAME="?([a-z]+)"?$', text, re.M)
    return m.group(1) if m else ""
# From Raspberry Pi's own apt repository: absent on plain Debian (a USB webcam and mock
# GPIO still work there), so skipped with a warning instead of failing the run.
PI_ONLY_PACKAGES = {"python3-picamera2", "python3-lgpio"}
USER = "kiosk"
GROUPS = ["video", "gpio", "render", "input", "dialout"]  # as SupplementaryGroups= in kiosk.service
PREFIX = "/opt/kiosk"
CONFIG = "/etc/kiosk/kiosk.toml"
CREDSTORE = "/etc/credstore/kiosk-mqtt"  # LoadCredential=mqtt:/etc/credstore/kiosk-mqtt
UNIT = "/etc/systemd/system/kiosk.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/kiosk.service"
# The root updater for the centre's signed update command (kiosk update --request), started by its path unit.
UPDATE_UNITS = ("kiosk-update.service", "kiosk-update.path")
UPDATE_WANTS = "/etc/systemd/system/multi-user.target.wants/kiosk-update.path"
JOURNALD = "/etc/systemd/journald.conf.d/kiosk.conf"
JOURNALD_CONF = b"""# Installed by kiosk provision: keep logs in RAM so the SD card sees no log writes.
[Journal]
Storage=volatile
RuntimeMaxUse=32M
"""
# The kiosk's Ed25519 device key (signs its telemetry): a credential of kiosk.service, never in kiosk.toml.
DEVICE_KEY = f"{CREDSTORE}/device-key"
DEVICE_KEY_REF = "credential:mqtt_device-key"  # LoadCredential=mqtt:... names file F "mqtt_F"
DEVICE_PUBLIC_KEY = "/etc/kiosk/device-key.pub.pem"
# The health authority's public signing key ([tracing] authority_key): public, but carried in the device
# file's [credentials] like the broker's CA, because the card holds no other file the config can name.
AUTHORITY_KEY = "/etc/kiosk/authority-sign.pub.pem"
CREDENTIAL_KEYS = {"mqtt_password", "mqtt_client_key", "mqtt_client_cert", "mqtt_ca", "device_key", "authority_key"}


class ProvisionError(KioskValueError):
    """A problem the operator must fix; exit 2 with the message."""


class StepFailed(KioskOSError):
    """A provisioning step (apt, useradd, pip, systemctl) failed; exit 1."""


# --- the kiosk.toml -------------------------------------------------------------

def render_config(template: str, overrides: dict[str, dict]) -> str:
    """The template's text with this device's values (:func:`kiosk.config.edit_toml`, comments kept)."""
    try:
        return kconfig.edit_toml(template, overrides)
    except kconfig.ConfigError as exc:
        raise ProvisionError(str(exc)) from None


def read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvisionError(f"cannot read the config template {path}: {exc.strerror}") from None


# --- inputs ---------------------------------------------------------------------

def load_device_file(path: Path) -> tuple[dict, dict]:
    """(config overrides by section, credentials) from a per-device TOML file.

    The file has the shape of kiosk.toml (any section and key, e.g. [signals] pins) plus
    an optional [credentials] table: mqtt_password, mqtt_client_key, mqtt_client_cert,
    mqtt_ca (PEM text), device_key (the kiosk's Ed25519 private key, PEM), authority_key (the health
    authority's Ed25519 public key, PEM: becomes ``[tracing] authority_key``), as written by ``kiosk fleet``.
    """
    from kiosk.secrets import FileRefused, read_capped

    try:
        data = tomllib.loads(read_capped(path, kconfig.CONFIG_MAX_BYTES).decode("utf-8"))
    except FileRefused as exc:
        raise ProvisionError(f"cannot read device file {exc}") from None
    except UnicodeDecodeError:
        raise ProvisionError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"{path}: not valid TOML: {exc}") from None
    creds = data.pop("credentials", {})
    if not isinstance(creds, dict) or not all(isinstance(v, str) for v in creds.values()):
        raise ProvisionError(f"{path}: [credentials] must be a table of text values")
    allowed = CREDENTIAL_KEYS
    unknown = set(creds) - allowed
    if unknown:
        raise ProvisionError(f"{path}: [credentials] unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(allowed))})")
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ProvisionError(f"{path}: {section} must be a table like [{section}]")
    return data, creds


def gather(args) -> tuple[dict, dict]:
    """Config overrides and credentials from the device file, then the options (which win)."""
    overrides: dict[str, dict] = {}
    creds: dict[str, str] = {}
    if args.device_file:
        overrides, creds = load_device_file(Path(args.device_file))
    opts = {("device", "site"): args.site, ("device", "id"): args.device_id, ("venue", "id"): args.venue_id,
            ("venue", "name"): args.venue_name, ("venue", "address"): args.venue_address,
            ("venue", "qr_content"): args.venue_qr, ("mqtt", "url"): args.mqtt_url,
            ("mqtt", "username"): args.mqtt_username}
    for (section, key), value in opts.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    for item in args.set or []:
        m = re.match(r"^([a-z_]+)\.([a-z_]+)=(.*)$", item, re.S)
        if not m:
            raise ProvisionError(f"--set {item!r}: expected SECTION.KEY=TOML-VALUE, e.g. signals.green_led=17")
        try:
            value = tomllib.loads(f"v = {m.group(3)}")["v"]
        except tomllib.TOMLDecodeError:
            value = m.group(3)  # a bare word is taken as a string
        overrides.setdefault(m.group(1), {})[m.group(2)] = value
    for name, opt in (("mqtt_password", args.mqtt_password_file), ("mqtt_client_key", args.mqtt_key_file),
                      ("mqtt_client_cert", args.mqtt_cert_file), ("mqtt_ca", args.mqtt_ca_file),
                      ("authority_key", args.authority_key_file)):
        if opt:
            creds[name] = _read_option_file(opt)
    if "mqtt_password" in creds:
        creds["mqtt_password"] = creds["mqtt_password"].rstrip("\r\n")
        if not creds["mqtt_password"]:
            raise ProvisionError("the broker password is empty")
    missing = [f"[{s}] {k}" for s, k in kconfig.required_keys() if not overrides.get(s, {}).get(k)]
    if missing:
        raise ProvisionError("this device's " + ", ".join(missing) + " must be given (options or --device-file); "
                             "the example's values are never used for a real kiosk")
    point_at_credentials(overrides, creds)
    return overrides, creds


def portable_config(data: dict, mapped) -> dict:
    """``data`` (TOML tables) with every path key (the schema's ``path=`` fields) passed through ``mapped``."""
    out = {section: dict(values) if isinstance(values, dict) else values for section, values in data.items()}
    for section, key in kconfig.path_keys():
        value = out.get(section, {}).get(key) if isinstance(out.get(section), dict) else None
        if isinstance(value, list):
            out[section][key] = [mapped(v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, str):
            out[section][key] = mapped(value)
    return out


def point_at_credentials(overrides: dict[str, dict], creds: dict) -> dict[str, dict]:
    """Secrets never go into kiosk.toml: it points at the credentials kiosk.service loads (changes ``overrides``)."""
    mqtt = overrides.setdefault("mqtt", {})
    if "mqtt_password" in creds:
        mqtt["password_file"] = "credential:mqtt_password"
    if "mqtt_client_key" in creds:
        mqtt["key_file"] = "credential:mqtt_client-key"
    if "mqtt_client_cert" in creds:
        mqtt["cert_file"] = "/etc/kiosk/mqtt-client.crt"
    if "mqtt_ca" in creds:
        mqtt["ca_file"] = "/etc/kiosk/mqtt-ca.crt"
    if not mqtt:
        del overrides["mqtt"]
    if "authority_key" in creds:
        creds["authority_key"] = authority_public_pem(creds["authority_key"], "the health authority's key")
        overrides.setdefault("tracing", {})["authority_key"] = AUTHORITY_KEY
    if overrides.get("device", {}).get("key_file", DEVICE_KEY_REF) != DEVICE_KEY_REF:
        raise ProvisionError("[device] key_file is set by provisioning (the device key becomes a credential of "
                             "kiosk.service); give the key as [credentials] device_key instead")
    overrides.setdefault("device", {})["key_file"] = DEVICE_KEY_REF
    return overrides


def authority_public_pem(text: str, what: str) -> str:
    """The health authority's Ed25519 public key as PEM, or ProvisionError saying why not.

    Its private signing key is refused outright: it signs every trace request, and a card
    is readable by anyone who holds it.
    """
    from kiosk.wire import signing

    if "PRIVATE KEY" in text:
        raise ProvisionError(f"{what} is a private key: give the public half (authority-sign.pub.pem from "
                             "`kiosk trace keygen`), never the signing key itself")
    try:
        key = signing.public_key_from_pem(text.encode("utf-8"), what)
    except signing.SigningKeyError as exc:
        raise ProvisionError(f"{exc} (expected authority-sign.pub.pem from `kiosk trace keygen`)") from None
    return signing.public_pem(key).decode("ascii")


# What provisioning writes beside kiosk.toml from [credentials], all public (0644).
PUBLIC_FILES = (("mqtt_ca", "/etc/kiosk/mqtt-ca.crt"), ("mqtt_client_cert", "/etc/kiosk/mqtt-client.crt"),
                ("authority_key", AUTHORITY_KEY))


def staged_files(creds: dict) -> dict[str, bytes]:
    """The files provisioning writes beside kiosk.toml that the config names (for validating it first)."""
    return {path: creds[key].encode() for key, path in PUBLIC_FILES if key in creds}


def validate(text: str, root: Path, staged: dict[str, bytes], where: str = CONFIG) -> None:
    """Check the rendered config with the kiosk's preflight, as the kiosk will (for another machine).

    Files named in it are looked up inside --root; the ones this run is about to write
    (``staged``) are checked from temporary copies, so --dry-run validates too.
    """
    from kiosk.config.preflight import check_text

    data = tomllib.loads(text)
    with tempfile.TemporaryDirectory(prefix="kiosk-provision-") as tmp:
        def mapped(value: str) -> str:
            if not value or value.startswith("credential:"):
                return value
            absolute = value if value.startswith("/") else str(Path(where).parent / value)
            if absolute in staged:
                copy = Path(tmp) / Path(absolute).name
                copy.write_bytes(staged[absolute])
                return str(copy)
            return str(root / absolute.lstrip("/"))

        check = Path(tmp) / "kiosk.toml"
        check.write_text(kconfig.dump_toml(portable_config(data, mapped)), encoding="utf-8")
        report = check_text(check.read_text(encoding="utf-8"), str(check), host=False)
    if not report.ok:
        # The key and what is wrong: lines and paths of our temporary copy would only mislead.
        lines = [f"{p.key}: {p.message}".replace(tmp + "/", "") if p.key else p.message.replace(tmp + "/", "")
                 for p in report.errors]
        raise ProvisionError(f"the resulting {where} would be invalid: " + "; ".join(lines))


# --- applying changes -----------------------------------------------------------

class Provisioner:
    """Applies steps to ``root``; records what changed; prints every action."""

    def __init__(self, root: Path, dry_run: bool, live: bool, out=print):
        self.root, self.dry_run, self.live, self.out = root, dry_run, live, out
        self.changes: list[str] = []

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _change(self, what: str) -> bool:
        """Record a change; True when it should actually be done."""
        self.changes.append(what)
        self.out(f"{'would ' if self.dry_run else ''}{what}")
        return not self.dry_run

    def ok(self, what: str) -> None:
        self.out(f"ok: {what}")

    def skip(self, what: str) -> None:
        self.out(f"skip (--root, needs the running system): {what}")

    def directory(self, path: str, mode: int, owner: str | None = None) -> None:
        p = self.at(path)
        if p.is_dir() and (p.stat().st_mode & 0o7777) == mode:
            self.ok(f"{path}/")
            return
        if self._change(f"create {path}/ ({mode:04o})"):
            p.mkdir(parents=True, exist_ok=True)
            p.chmod(mode)
            self._chown(p, owner)

    def file(self, path: str, data: bytes, mode: int, owner: str | None = None, backup: bool = False) -> bool:
        p = self.at(path)
        if p.is_file() and not p.is_symlink() and p.read_bytes() == data and (p.stat().st_mode & 0o7777) == mode:
            self.ok(path)
            return False
        verb = "update" if p.exists() else "write"
        if self._change(f"{verb} {path} ({mode:04o})"):
            p.parent.mkdir(parents=True, exist_ok=True)
            if backup and p.exists():
                shutil.copy2(p, p.with_name(p.name + ".previous"))
            # Write then rename: a power cut never leaves a half-written config.
            tmp = p.with_name(f".{p.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            self._chown(tmp, owner)
            os.replace(tmp, p)
        return True

    def symlink(self, path: str, target: str) -> bool:
        p = self.at(path)
        if p.is_symlink() and os.readlink(p) == target:
            self.ok(f"{path} -> {target}")
            return False
        if self._change(f"link {path} -> {target}"):
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(target)
            os.replace(tmp, p)
        return True

    def run(self, cmd: list[str], what: str) -> bool:
        """A command only the running system can do; skipped (printed) under --root."""
        if not self.live:
            self.skip(shlex.join(cmd))
            return False
        if self._change(f"{what}: {shlex.join(cmd)}"):
            result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                raise StepFailed(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout.strip()}")
        return True

    def _chown(self, p: Path, owner: str | None) -> None:
        if owner and self.live:
            user, _, group = owner.partition(":")
            shutil.chown(p, user or None, group or None)


def _query(cmd: list[str]) -> str | None:
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return result.stdout if result.returncode == 0 else None


def step_packages(pv: Provisioner) -> None:
    codename = os_codename(pv.at("/"))
    packages = apt_packages(codename)
    if not pv.live:
        pv.skip(f"apt-get install -y --no-install-recommends {' '.join(packages)}"
                f"  (for {codename or 'an unnamed release: trixie names'})")
        return
    missing = [p for p in packages
               if "install ok installed" not in (_query(["dpkg-query", "-W", "-f=${Status}", p]) or "")]
    if not missing:
        pv.ok("apt packages installed")
        return
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    pv.run(env_cmd + ["apt-get", "update", "-q"], "refresh the package lists")
    for p in sorted(PI_ONLY_PACKAGES & set(missing)):
        policy = _query(["apt-cache", "policy", p]) or ""
        if "Candidate:" not in policy or "Candidate: (none)" in policy:
            effect = "use [camera] source = opencv" if "picamera2" in p else "GPIO signals will be simulated"
            pv.out(f"warning: {p} is not available (not Raspberry Pi OS?): skipped; {effect}")
            missing.remove(p)
    if missing:
        pv.run(env_cmd + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], "install packages")


def step_user(pv: Provisioner) -> None:
    if not pv.live:
        for g in GROUPS:
            pv.skip(f"groupadd --system {g} (when missing)")
        pv.skip(f"useradd --system --user-group --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin {USER}")
        pv.skip(f"usermod --append --groups {','.join(GROUPS)} {USER}")
        return
    for g in GROUPS:
        # kiosk.service fails to start when a SupplementaryGroups= group does not exist
        # (gpio and render only exist on some images).
        if _query(["getent", "group", g]) is None:
            pv.run(["groupadd", "--system", g], f"create group {g}")
    if _query(["getent", "passwd", USER]) is None:
        pv.run(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/kiosk", "--no-create-home",
                "--shell", "/usr/sbin/nologin", "--comment", "QR check-in kiosk", USER], f"create user {USER}")
        have = set()
    else:
        have = set((_query(["id", "-nG", USER]) or "").split())
    if set(GROUPS) - have:
        pv.run(["usermod", "--append", "--groups", ",".join(GROUPS), USER], f"add {USER} to its groups")
    else:
        pv.ok(f"user {USER} and its groups")


def system_python() -> str:
    """The interpreter apt's python3-* packages belong to: --system-site-packages only sees
    them from a venv made with it (not with a pyenv or other Python that runs this script)."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def source_digest(source: Path) -> str:
    """Hash of what gets installed, so an unchanged source is never reinstalled."""
    h = hashlib.sha256()
    files = [source / "pyproject.toml", source / "README.md"]
    for pkg in ("kiosk", "device"):
        files += sorted(p for p in (source / pkg).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        if p.is_file():
            h.update(str(p.relative_to(source)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def project_version(source: Path) -> str:
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', (source / "kiosk" / "__init__.py").read_text(), re.M)
    return m.group(1) if m else "0"


def step_release(pv: Provisioner, source: Path) -> bool:
    """The project in a release venv; /opt/kiosk/venv points at it. True when switched."""
    name = f"{project_version(source)}-{source_digest(source)[:10]}"
    release = f"{PREFIX}/releases/{name}"
    venv_link = f"{PREFIX}/venv"
    link = pv.at(venv_link)
    complete = pv.at(release) / ".kiosk-release"
    if link.is_symlink() and os.readlink(link) == f"releases/{name}" and complete.is_file():
        pv.ok(f"{venv_link} -> releases/{name}")
        return False
    if not pv.live:
        pv.skip(f"python3 -m venv --system-site-packages {release}; {release}/bin/pip install {source}")
        pv.skip(f"ln -sfn releases/{name} {venv_link}")
        return False
    if not complete.is_file():
        if pv.at(release).exists() and not pv.dry_run:
            shutil.rmtree(pv.at(release))  # a half-made release from an interrupted run
        pv.directory(f"{PREFIX}/releases", 0o755)
        pv.run([system_python(), "-m", "venv", "--system-site-packages", release], "create the release venv")
        pv.run([f"{release}/bin/python", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
                "-q", str(source)], "install the kiosk into it")
        pv.file(f"{release}/.kiosk-release", f"{name}\n".encode(), 0o644)
    return pv.symlink(venv_link, f"releases/{name}")


def step_docs(pv: Provisioner, source: Path) -> None:
    for doc in ("operations.md", "provisioning.md"):
        p = source / "docs" / doc
        if p.is_file():
            pv.file(f"{PREFIX}/docs/{doc}", p.read_bytes(), 0o644)


def step_config(pv: Provisioner, text: str, creds: dict) -> bool:
    changed = False
    pv.directory("/etc/kiosk", 0o755)
    for key, path in PUBLIC_FILES:
        if key in creds:
            changed |= pv.file(path, creds[key].encode(), 0o644)
    # root:kiosk 0640: the kiosk reads it, other local users do not see the venue's broker user.
    changed |= pv.file(CONFIG, text.encode("utf-8"), 0o640, owner=f"root:{USER}", backup=True)
    return changed


def step_credentials(pv: Provisioner, creds: dict) -> bool:
    changed = False
    pv.directory("/etc/credstore", 0o700)
    pv.directory(CREDSTORE, 0o700)
    if "mqtt_password" in creds:
        changed |= pv.file(f"{CREDSTORE}/password", (creds["mqtt_password"] + "\n").encode(), 0o600)
    if "mqtt_client_key" in creds:
        changed |= pv.file(f"{CREDSTORE}/client-key", creds["mqtt_client_key"].encode(), 0o600)
    return changed


def step_device_key(pv: Provisioner, creds: dict) -> tuple[bool, str]:
    """The kiosk's Ed25519 device key: the one given (``kiosk fleet``), the one already there, or a new one.

    The private key goes to the credential store (root, 0600; kiosk.service loads it as
    ``credential:mqtt_device-key``), the public key to /etc/kiosk for the fleet registry.
    Returns (changed, kid).
    """
    from kiosk.wire import signing

    given = creds.get("device_key")
    existing = pv.at(DEVICE_KEY)
    if given:
        key = signing.private_key_from_pem(given.encode(), "[credentials] device_key")
    elif existing.is_file():
        key = signing.load_private_key(str(existing))
        given = None
    else:
        key = signing.generate_key()
    pem = signing.private_pem(key)
    if not given and existing.is_file():
        pem = existing.read_bytes()  # byte for byte what is there: a second run changes nothing
    changed = pv.file(DEVICE_KEY, pem, 0o600)
    changed |= pv.file(DEVICE_PUBLIC_KEY, signing.public_pem(key), 0o644)
    kid = signing.kid_of(key.public_key())
    pv.out(f"device key: kid {kid}, public key {DEVICE_PUBLIC_KEY} (the fleet registry must hold it)")
    return changed, kid


def step_journald(pv: Provisioner) -> None:
    if pv.file(JOURNALD, JOURNALD_CONF, 0o644):
        pv.run(["systemctl", "restart", "systemd-journald.service"], "apply the journal settings")


def step_update_units(pv: Provisioner, source: Path) -> None:
    """kiosk-update.path and .service, the path unit enabled and started (not the kiosk: nothing to restart)."""
    changed = False
    for name in UPDATE_UNITS:
        changed |= pv.file(f"/etc/systemd/system/{name}", (source / "systemd" / name).read_bytes(), 0o644)
    if changed and pv.live:
        pv.run(["systemctl", "daemon-reload"], "reload systemd")
    if pv.at(UPDATE_WANTS).is_symlink() or pv.at(UPDATE_WANTS).exists():
        pv.ok("kiosk-update.path enabled")
    elif pv.live:
        pv.run(["systemctl", "enable", "--now", "kiosk-update.path"], "watch for the centre's update command")
    else:
        pv.symlink(UPDATE_WANTS, "/etc/systemd/system/kiosk-update.path")


def step_unit(pv: Provisioner, source: Path) -> bool:
    changed = pv.file(UNIT, (source / "systemd" / "kiosk.service").read_bytes(), 0o644)
    if changed:
        pv.run(["systemctl", "daemon-reload"], "reload systemd")
    if pv.at(WANTS).is_symlink() or pv.at(WANTS).exists():
        pv.ok("kiosk.service enabled")
    elif pv.live:
        pv.run(["systemctl", "enable", "kiosk.service"], "enable the kiosk at boot")
        changed = True
    else:
        # What `systemctl enable` does, done in the tree.
        changed |= pv.symlink(WANTS, UNIT)
    return changed


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``kiosk provision`` (and of scripts/provision, which is the same command)."""
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--root", default="/", help="apply to this directory tree instead of / (apt, users, venv and systemctl are skipped)")
    p.add_argument("--dry-run", action="store_true", help="print every action, change nothing")
    p.add_argument("--device-file", help="per-device TOML: kiosk.toml sections plus [credentials] (kiosk fleet writes these)")
    p.add_argument("--site", help="[device] site")
    p.add_argument("--device-id", help="[device] id")
    p.add_argument("--venue-id", help="[venue] id")
    p.add_argument("--venue-name", help="[venue] name")
    p.add_argument("--venue-address", help="[venue] address")
    p.add_argument("--venue-qr", help="[venue] qr_content: the exact text of the venue QR code")
    p.add_argument("--mqtt-url", help="[mqtt] url, mqtt://host:port or mqtts://host:port")
    p.add_argument("--mqtt-username", help="[mqtt] username")
    p.add_argument("--mqtt-password-file", help="file holding the broker password (copied to the credential store)")
    p.add_argument("--mqtt-key-file", help="TLS client key (copied to the credential store)")
    p.add_argument("--mqtt-cert-file", help="TLS client certificate")
    p.add_argument("--mqtt-ca-file", help="CA certificate of the broker")
    p.add_argument("--authority-key-file",
                   help="the health authority's public signing key (authority-sign.pub.pem): "
                        "installed as /etc/kiosk/authority-sign.pub.pem, [tracing] authority_key")
    p.add_argument("--device-key-file", help="this kiosk's Ed25519 private key (PEM); default: the one already "
                                             "installed, else a new one")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="any other kiosk.toml key, TOML value (repeatable)")
    p.add_argument("--source", default=str(SOURCE), help="the project to install (default: this checkout)")
    p.add_argument("--template", help="config template (default: SOURCE/config/kiosk.example.toml)")
    p.add_argument("--no-start", action="store_true", help="do not (re)start kiosk.service")


def run(args) -> int:
    """Provision as the options say; :class:`ProvisionError` (exit 2) before anything is written."""
    root = Path(args.root).resolve()
    live = root == Path("/")
    source = Path(args.source).resolve()
    if live and not args.dry_run and os.geteuid() != 0:
        raise ProvisionError("run as root (sudo), or try --dry-run / --root DIR")
    if not root.is_dir():
        raise ProvisionError(f"--root {root}: no such directory")
    if not (source / "systemd" / "kiosk.service").is_file():
        raise ProvisionError(f"--source {source}: not the kiosk project (no systemd/kiosk.service)")
    overrides, creds = gather(args)
    if args.device_key_file:
        creds["device_key"] = _read_option_file(args.device_key_file)
    template = read_template(Path(args.template) if args.template else source / "config" / "kiosk.example.toml")
    text = render_config(template, overrides)
    validate(text, root, staged_files(creds))
    if "device_key" in creds:
        from kiosk.wire import signing

        signing.private_key_from_pem(creds["device_key"].encode(), "the device key")  # a bad key: exit 2, nothing written
    pv = Provisioner(root, args.dry_run, live)
    print(f"provision: {'dry run, ' if args.dry_run else ''}device {overrides['device']['site']}/{overrides['device']['id']} into {root}")
    try:
        step_packages(pv)
        step_user(pv)
        restart = step_release(pv, source)
        step_docs(pv, source)
        restart |= step_config(pv, text, creds)
        restart |= step_credentials(pv, creds)
        restart |= step_device_key(pv, creds)[0]
        step_journald(pv)
        restart |= step_unit(pv, source)
        step_update_units(pv, source)
        if restart and not args.no_start:
            pv.run(["systemctl", "restart", "kiosk.service"], "start the kiosk with the new settings")
    except (StepFailed, OSError) as exc:
        print(f"provision: failed: {exc}", file=sys.stderr)
        return 1
    if not pv.changes:
        print("provision: nothing to change; this kiosk is already provisioned")
    else:
        print(f"provision: {len(pv.changes)} change(s){' would be made' if args.dry_run else ' made'}")
    return 0


def _read_option_file(path: str) -> str:
    from kiosk.secrets import FileRefused, read_capped

    try:
        return read_capped(path, kconfig.CONFIG_MAX_BYTES).decode("utf-8")
    except FileRefused as exc:
        raise ProvisionError(f"cannot read {exc}") from None
    except UnicodeDecodeError:
        raise ProvisionError(f"{path}: not UTF-8 text") from None
