"""Broker connections: URL, TLS and credentials for every MQTT client the kiosk makes.

The publisher, the fleet monitor and the simulator all connect through
:func:`make_client`. Passwords and keys come from :mod:`kiosk.secrets`
(files or systemd credentials) and are never logged.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.secrets import read_secret, secret_path


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; raises ValueError with a plain message."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"not a broker URL: {url!r}") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"not a broker URL (expected mqtt://host:port or mqtts://host:port): {url!r}")
    if parts.username or parts.password:
        raise ValueError("put the user name in [mqtt] username and the password in password_file, not in the URL")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls)


def make_client(client_id: str, url: str, mqtt_config=None, base_dir=None,
                protocol: int = mqtt.MQTTv311, clean: bool = True) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho client (callback API v2) set up for ``url`` with the config's TLS and credentials.

    The caller sets callbacks and calls ``connect_async`` + ``loop_start``.
    """
    address = parse_url(url)
    kw = {"clean_session": clean} if protocol != mqtt.MQTTv5 else {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kw)
    mc = mqtt_config
    if mc is not None:
        if mc.username:
            password = read_secret(mc.password_file, base_dir) if mc.password_file else None
            client.username_pw_set(mc.username, password)
        if mc.cert_file and not mc.key_file:
            raise ValueError("[mqtt] cert_file needs key_file")
        if address.tls or mc.ca_file or mc.cert_file:
            ca = str(secret_path(mc.ca_file, base_dir)) if mc.ca_file else None
            cert = str(secret_path(mc.cert_file, base_dir)) if mc.cert_file else None
            key = str(secret_path(mc.key_file, base_dir)) if mc.key_file else None
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(mc.reconnect_min_seconds, mc.reconnect_max_seconds)
    elif address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    return client, address
