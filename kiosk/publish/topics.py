"""The MQTT topic contract (docs/mqtt.md): ``checkin/v1/{site}/{device}/{leaf}``."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "checkin/v1"
ALL_KIOSKS = f"{PREFIX}/+/+/#"  # what the fleet monitor subscribes to
LEAVES = ("status", "counts", "events", "info", "health")


@dataclass(frozen=True)
class Topics:
    """The topics of one kiosk."""

    site: str
    device: str

    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.site}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def counts(self) -> str:
        return f"{self.base}/counts"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def info(self) -> str:
        return f"{self.base}/info"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    def cmd(self, name: str) -> str:
        """The inbound topic of one command."""
        return f"{self.base}/cmd/{name}"


def parse(topic: str) -> tuple[str, str, str] | None:
    """``(site, device, leaf)`` of a kiosk topic (leaf e.g. ``counts`` or ``cmd/notice``), else None."""
    parts = topic.split("/", 4)
    if len(parts) != 5 or parts[0] != "checkin" or parts[1] != "v1":
        return None
    return parts[2], parts[3], parts[4]
