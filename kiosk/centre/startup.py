"""The line ``kiosk centre`` logs when it starts: what it listens on, which store and broker, how many kiosks.

What an on-call engineer looks for first in the journal (``journalctl -u kiosk-centre``): is this the
process I think it is, on the store and broker I think it uses, and did it load the fleet? A store
URL's password (``postgresql://user:secret@host/db`` or ``?password=``) is never written.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = {"password", "sslpassword", "passfile"}


def safe_url(url: str) -> str:
    """``url`` without a password in its authority or its query (a SQLite path as it is)."""
    if "://" not in url:
        return url or ":memory:"
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k.lower() not in _SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def startup_line(store, *, listen: str | None, broker: str | None, share_group: str = "",
                 metrics: str | None = None) -> str:
    """One line: the dashboard's address (or none), the store, the broker (or none), the fleet it knows, the
    store's schema version and the metrics listener (``metrics``: its HOST:PORT, or none)."""
    from kiosk.centre.migrations import version_of

    (counts,) = store.query("SELECT COUNT(*) AS kiosks, COALESCE(SUM(revoked), 0) AS revoked FROM fleet")
    venues = store.registry_summary()["venues"]
    kiosks, revoked = int(counts["kiosks"] or 0), int(counts["revoked"] or 0)
    web = f"dashboard on http://{listen}" if listen else "no dashboard (--no-web)"
    ingest = (f"ingesting from {safe_url(broker)}" + (f" (shared subscription group {share_group})" if share_group else "")
              if broker else "no ingest (--no-ingest)")
    probes = f"metrics and probes on http://{metrics}/metrics" if metrics else "no metrics listener"
    return (f"kiosk centre: {web}; {ingest}; store {getattr(store, 'dialect', '?')} {safe_url(str(store.url))}; "
            f"registry: {kiosks - revoked} kiosk(s) ({revoked} revoked), {int(venues or 0)} registered venue(s); "
            f"schema version {version_of(store)}; {probes}")


def announce(store, **where) -> str:
    """Log :func:`startup_line` at INFO, which the centre's log shows even when the rest is at WARNING."""
    log = logging.getLogger("kiosk.centre")
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    line = startup_line(store, **where)
    log.info("%s", line)
    return line
