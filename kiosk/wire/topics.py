"""The MQTT topics (docs/mqtt.md): every ``checkin/v1/...`` string is written here and nowhere else.

    checkin/v1/{site}/{device}/{status,counts,events,info,health}   a kiosk's telemetry
    checkin/v1/{site}/{device}/cmd/{name}, .../cmd-result            the centre's commands and the answers
    checkin/v1/trust/bundle, checkin/v1/{site}/trust/bundle         signed trust bundles (retained)
    checkin/v1/trace/request, checkin/v1/{site}/trace/request       the health authority's trace requests
    checkin/v1/trace/{id}/{site}/{device}                           a kiosk's answer to one request
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "checkin/v1"
ALL_KIOSKS = f"{PREFIX}/+/+/#"  # what the centre and the fleet monitor subscribe to
LEAVES = ("status", "counts", "events", "info", "health")
FLEET_BUNDLE = f"{PREFIX}/trust/bundle"
FLEET_TRACE_REQUEST = f"{PREFIX}/trace/request"


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

    @property
    def everything(self) -> str:
        """Every topic under this kiosk's own prefix (its telemetry, commands and answers)."""
        return f"{self.base}/#"

    def cmd(self, name: str) -> str:
        """The inbound topic of one command."""
        return f"{self.base}/cmd/{name}"

    @property
    def cmd_prefix(self) -> str:
        """What every command topic of this kiosk starts with."""
        return f"{self.base}/cmd/"

    @property
    def cmd_filter(self) -> str:
        """The subscription for every command to this kiosk."""
        return f"{self.base}/cmd/+"

    @property
    def cmd_result(self) -> str:
        """Where the kiosk answers its commands."""
        return f"{self.base}/cmd-result"


def cmd_result_of(command_topic: str) -> str:
    """The ``cmd-result`` topic that answers a command sent on ``command_topic``."""
    return command_topic.rsplit("/cmd/", 1)[0] + "/cmd-result"


def parse(topic: str) -> tuple[str, str, str] | None:
    """``(site, device, leaf)`` of a kiosk topic (leaf e.g. ``counts`` or ``cmd/notice``), else None."""
    parts = topic.split("/", 4)
    if len(parts) != 5 or parts[0] != "checkin" or parts[1] != "v1":
        return None
    return parts[2], parts[3], parts[4]


# -- trust bundles (retained) ---------------------------------------------------------------

def site_bundle(site: str) -> str:
    """A site's own trust-bundle topic."""
    return f"{PREFIX}/{site}/trust/bundle"


def bundle_topic(site: str | None = None) -> str:
    """Where a bundle is published: the site's topic, or the fleet's without a site."""
    return site_bundle(site) if site else FLEET_BUNDLE


def bundle_topics(site: str) -> list[str]:
    """The retained topics a kiosk takes trust bundles from: the fleet's and its site's."""
    return [FLEET_BUNDLE, site_bundle(site)]


# -- contact tracing ------------------------------------------------------------------------

def site_trace_request(site: str) -> str:
    """A site's trace-request topic (the fleet's is :data:`FLEET_TRACE_REQUEST`)."""
    return f"{PREFIX}/{site}/trace/request"


def trace_answer(request_id: str, site: str, device: str) -> str:
    """Where one kiosk answers one trace request."""
    return f"{PREFIX}/trace/{request_id}/{site}/{device}"


def trace_answers(request_id: str) -> str:
    """The subscription for every kiosk's answer to one trace request."""
    return f"{PREFIX}/trace/{request_id}/+/+"


# -- what the broker lets each side do (kiosk fleet writes the ACL) --------------------------

def kiosk_acl(site: str, device: str) -> list[tuple[str, str]]:
    """(access, topic) pairs a kiosk may use: publish under its own prefix and its trace answers,
    read its own commands, the trust bundles and the trace requests."""
    own = Topics(site, device)
    return [("write", own.everything),
            ("read", f"{own.base}/cmd/#"),
            ("read", FLEET_BUNDLE),
            ("read", site_bundle(site)),
            ("read", FLEET_TRACE_REQUEST),
            ("read", site_trace_request(site)),
            ("write", f"{PREFIX}/trace/+/{site}/{device}")]


def tracer_acl() -> list[tuple[str, str]]:
    """(access, topic) pairs the health authority's tracing desk may use: publish trace requests (the
    fleet's and any site's) and read the answers, nothing else: no counts, health or events, no commands,
    no bundles. A site or device id is never ``trace`` (``RESERVED_IDS``), so the answers' filter
    reaches no kiosk's own topics."""
    return [("write", FLEET_TRACE_REQUEST),
            ("write", site_trace_request("+")),
            ("read", f"{PREFIX}/trace/+/+/+")]


def centre_acl() -> list[tuple[str, str]]:
    """(access, topic) pairs the centre may use: read everything, write commands, bundles, trace requests."""
    return [("read", f"{PREFIX}/#"),
            ("write", f"{PREFIX}/+/+/cmd/#"),
            ("write", FLEET_BUNDLE),
            ("write", site_bundle("+")),
            ("write", FLEET_TRACE_REQUEST),
            ("write", site_trace_request("+"))]
