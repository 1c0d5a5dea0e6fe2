"""Doctor check of the central broker: connect with this kiosk's credentials, then
publish to its own status topic at QoS 1 and wait for the PUBACK.

MQTT 5 is used because a 3.1.1 broker acknowledges a publish its ACL dropped
exactly like an accepted one; an MQTT 5 PUBACK carries "Not authorized".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from kiosk.doctor.finding import FAIL, PASS, WARN, Context, Finding

# Where scripts/provision puts broker secrets; kiosk.service loads the folder with
# LoadCredential=mqtt:/etc/credstore/kiosk-mqtt, so file F is credential "mqtt_F".
CREDSTORE = os.environ.get("KIOSK_CREDSTORE", "/etc/credstore/kiosk-mqtt")
CREDENTIAL_PREFIX = "mqtt_"


@contextlib.contextmanager
def service_credentials(mqtt_config):
    """Outside systemd, make ``credential:mqtt_*`` references readable as kiosk.service sees them.

    Yields an error message (str) when the references cannot be resolved, else None.
    """
    refs = [r for r in (mqtt_config.password_file, mqtt_config.key_file) if r.startswith("credential:")]
    if not refs or os.environ.get("CREDENTIALS_DIRECTORY"):
        yield None
        return
    store = Path(CREDSTORE)
    with tempfile.TemporaryDirectory(prefix="kiosk-doctor-") as tmp:
        for ref in refs:
            name = ref.split(":", 1)[1]
            src = store / name[len(CREDENTIAL_PREFIX):] if name.startswith(CREDENTIAL_PREFIX) else store / name
            if not os.access(src, os.R_OK):
                yield (f"{ref} is loaded by kiosk.service from {src}, which this user cannot read"
                       f"{'' if src.exists() else ' (it does not exist)'}")
                return
            os.symlink(src, Path(tmp) / name)
        os.environ["CREDENTIALS_DIRECTORY"] = tmp
        try:
            yield None
        finally:
            os.environ.pop("CREDENTIALS_DIRECTORY", None)


def _kiosk_running() -> bool:
    try:
        r = subprocess.run(["systemctl", "is-active", "--quiet", "kiosk.service"], timeout=3,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check_broker(ctx: Context) -> Finding:
    mc = ctx.config.mqtt
    if not mc.enabled:
        return Finding("broker", WARN, "MQTT disabled ([mqtt] enabled = false): counts stay on the device",
                       "set [mqtt] enabled = true and the broker settings to report to the district")
    with service_credentials(mc) as problem:
        if problem:
            return Finding("broker", FAIL, problem, "run `sudo kiosk doctor ...`, or re-run scripts/provision with the broker password")
        return _publish_status(ctx)


def _publish_status(ctx: Context) -> Finding:
    import paho.mqtt.client as mqtt

    from kiosk.wire.broker import make_client
    from kiosk.wire.topics import Topics
    from kiosk.secrets import SecretError

    cfg, mc = ctx.config, ctx.config.mqtt
    topic = Topics(cfg.device.site, cfg.device.id).status
    where = mc.url
    try:
        client, address = make_client(f"{cfg.device.site}-{cfg.device.id}-doctor", mc.url, mc,
                                      base_dir=Path(cfg.source_path).parent, protocol=mqtt.MQTTv5)
    except (SecretError, ValueError, OSError) as exc:
        return Finding("broker", FAIL, f"{where}: {exc}", "check [mqtt] password_file, key_file, cert_file and ca_file")
    connected, published = threading.Event(), threading.Event()
    answer: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        answer["connack"] = reason_code
        connected.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        answer["puback"] = reason_code
        published.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    client.connect_timeout = ctx.broker_timeout
    try:
        client.connect(address.host, address.port, keepalive=max(5, int(ctx.broker_timeout * 2)))
    except OSError as exc:  # refused, unreachable, DNS, TLS handshake (ssl.SSLError is an OSError)
        return Finding("broker", FAIL, f"cannot reach {where}: {exc.strerror or exc}",
                       "check the network, the firewall and [mqtt] url; the kiosk keeps working offline and sends "
                       "everything once the broker is back")
    client.loop_start()
    try:
        if not connected.wait(ctx.broker_timeout):
            return Finding("broker", FAIL, f"{where}: no answer to CONNECT within {ctx.broker_timeout:g} s",
                           "check [mqtt] url (mqtts:// port 8883 for TLS, mqtt:// 1883 without)")
        rc = answer["connack"]
        if rc.is_failure:
            return Finding("broker", FAIL, f"{where} refused the connection: {rc}",
                           "check [mqtt] username and the password in the credential store "
                           "(re-run scripts/provision with --mqtt-password-file)" if rc.value in (0x86, 0x87, 0x8C)
                           else "ask the broker's administrator about this refusal")
        # The status payload the kiosk itself would publish now; not retained, so the
        # retained status (and the last will) stay the kiosk's own.
        payload = b"online" if _kiosk_running() else b"offline"
        info = client.publish(topic, payload, qos=1, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return Finding("broker", FAIL, f"{where}: publish failed ({mqtt.error_string(info.rc)})", "re-run the check")
        if not published.wait(ctx.broker_timeout):
            return Finding("broker", FAIL, f"{where}: no PUBACK for {topic} within {ctx.broker_timeout:g} s",
                           "the broker is overloaded or drops our messages: ask its administrator")
        rc = answer["puback"]
        if rc.is_failure:
            return Finding("broker", FAIL, f"{where} refused publishing to {topic}: {rc}",
                           f"the broker's ACL must let user {mc.username or '(anonymous)'!r} publish to "
                           f"{Topics(cfg.device.site, cfg.device.id).everything}")
        user = f" as {mc.username}" if mc.username else " (anonymous)"
        return Finding("broker", PASS, f"{where}{user}: published {topic}, QoS 1 acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()
