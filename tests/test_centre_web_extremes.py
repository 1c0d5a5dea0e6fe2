"""Pages never fall over (issue 19 item 3, the web half): whatever the store holds, every route answers.

Extreme values are written straight into the store (huge, negative, far-past and far-future times,
odd Unicode, NUL where the database can hold one), on SQLite and on a real PostgreSQL; then every
route of the route table (pages, API, CSV, charts) is requested as the city and as a district
account, with every district, ward and venue the store names: no answer is a 5xx. Bad parameters
get 400 with a sentence naming the parameter.

Two sets of values: those a time or a sum can still be shown for (times from year 1 to 9999,
counts whose sums stay within 64 bits), and those beyond (a time in the year 10000 or 1e308 hours of
trust age, sums past 2^63; the ingest refuses such claims, but a store may hold them). No 5xx for either.
"""

from __future__ import annotations

import re
import time
import urllib.parse

import pytest
from starlette.testclient import TestClient

from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import INSPECTION_KINDS, Centre, Settings
from kiosk.centre.store import HOURS, open_store
from kiosk.centre.web import create_app
from kiosk.centre.web.routes import ENDPOINTS
from centre_helpers import seeded_city
from centre_pg import pg_url, postgres_server  # noqa: F401

PASSWORD = "correct horse battery"
BIG = 2**62
ODD_DISTRICT = "Quận <b>&\"'%20 \u202e😷"
ODD_WARD = "Phường e\u0301\u2028?#&"
ODD_NAMES = ["<script>alert(1)</script>", "\u202eevil", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😷", "e\u0301" * 200, "x" * 5000, "",
             "=1+2", "\u2028\u2029", "\ufeffbom", "'; DROP TABLE venues; --"]
# Times a date can be shown for: the last second of 9999, the first of year 1, 1970, before it, 2096.
TIMES = [253402300799.0, -62135596800.0, 0.0, -1.0, 4e9]
FIRST, LAST = "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.000Z"  # ISO strings sort as times
BEYOND_TIMES = [1e18, -1e18, 253402300800.0, 1e300]  # year ~3e10, ~-3e10, 10000


def extreme_rows(store, today: str, nul: bool, beyond: bool) -> list[str]:
    """Write the extreme rows (``beyond``: values past what a date or a 64-bit sum holds); returns the
    venue ids written."""
    names = ODD_NAMES + (["a\x00b"] if nul else [])
    times = BEYOND_TIMES if beyond else TIMES
    big = BIG if beyond else 2**53 - 1  # 2^53: a dozen of them still sum within 64 bits
    trust_hours = [1e308, 1e12, -1e308, 3.0] if beyond else [1e6, -1e6, 0.0, 3.0]
    seen_ts = [1e300, -1e300] if beyond else [253402300799.0, -62135596800.0]
    venue_ids, now = [], time.time()
    for i, name in enumerate(names):
        vid = f"X-{i}-{'%?#&' if i % 2 else 'ü'}"
        venue_ids.append(vid)
        store.execute("INSERT INTO venues (venue_id, name, address, province, district, ward, province_code, "
                      "district_code, ward_code, venue_qr_sha256, registered) VALUES (?, ?, ?, '', ?, ?, '', '', '', "
                      "?, ?)", [vid, name, name[::-1], ODD_DISTRICT, ODD_WARD if i % 3 else name[:50], "ab" * i, i % 2])
        site, device = f"S{i}", f"D{i}"
        t = times[i % len(times)]
        store.execute("INSERT INTO fleet (site, device, venue_id, kid, revoked) VALUES (?, ?, ?, 'k', 0)",
                      [site, device, vid])
        store.execute("INSERT INTO kiosk_info VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, '', '', '', ?, 'k', ?, ?)",
                      [site, device, vid, vid, name, name, ODD_DISTRICT, ODD_WARD, "cd" * i, name[:100], t])
        store.execute("INSERT INTO kiosk_status VALUES (?, ?, ?, ?, ?)",
                      [site, device, ["online", "offline", "💥"][i % 3], t, t if i % 2 else None])
        store.execute("INSERT INTO kiosk_health (site, device, camera_ok, camera_error, display_ok, clock_synced, "
                      "trust_stale, trust_age_hours, degraded, health_json, health_ts, camera_since, display_since) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [site, device, i % 2, name, (i + 1) % 2, i % 2, 1, trust_hours[i % 4],
                       ",".join([name[:20]] * 3), "{}", [now + 1e9, t, now][i % 3], t, t])
        store.execute("INSERT INTO kiosk_seen VALUES (?, ?, ?, ?, ?)",
                      [site, device, [now, t, *seen_ts][i % 4], [2**63 - 1, -(2**63), 0][i % 3], t])
        for day, n in ((today, [big, -big, 2**31, 7][i % 4]), ("9999-12-31", big), ("0001-01-01", -5),
                       ("not a day", 3)):
            store.execute("INSERT INTO daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [site, device, day, vid, n, -n if i % 2 else n, 0, n, n, n, 2**62, t, t])
        store.execute(f"INSERT INTO hourly (site, device, day, seq, {', '.join(HOURS)}) VALUES (?, ?, ?, ?, "
                      f"{', '.join('?' * 24)})", [site, device, today, 1, *[(big if h % 2 else -big // 3) for h in range(24)]])
        store.execute("INSERT INTO refused VALUES (?, ?, ?, ?)", [f"checkin/v1/{name[:40]}", "malformed", big, t])
    return venue_ids


def every_request(districts: list[str], wards: list[tuple[str, str]], venues: list[str]) -> list[str]:
    """Every route with every stored name in its path, and its parameters at their edges."""
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    out = []
    for e in ENDPOINTS:
        paths = [e.path]
        if "{name}/wards/{ward}" in e.path or "{name}/ward/{ward}" in e.path:
            paths = [e.path.replace("{name}", q(d)).replace("{ward}", q(w)) for d, w in wards]
        elif "{name}" in e.path:
            paths = [e.path.replace("{name}", q(d)) for d in districts]
        elif "{venue_id}" in e.path:
            paths = [e.path.replace("{venue_id}", q(v)) for v in venues]
        elif "{chart}" in e.path:
            paths = [e.path.replace("{chart}", c) for c in ("history", "coverage", "hourly")]
        names = {p.name for p in e.params}
        queries = [""]
        if "district" in names:
            queries += [f"district={q(d)}" for d in districts]
        if "venue_id" in names and e.kind != "page":
            queries += [f"venue_id={q(v)}" for v in venues[:4]]
        if "kind" in names:
            queries += [f"kind={k}" for k in INSPECTION_KINDS]
        if "days" in names:
            queries += ["days=1", "days=120"]
        if "offset" in names:
            queries += ["offset=10000000&limit=5000", "limit=1"]
        out += [p + ("?" + qs if qs else "") for p in paths for qs in queries]
    return out


def serve_extremes(store, beyond: bool = False) -> tuple[TestClient, TestClient, list[str]]:
    seeded_city(store, venues=20, history_days=5)
    centre = Centre(store, Settings(grace_hour=0))
    venues = extreme_rows(store, centre.settings.today(), nul=store.dialect == "sqlite", beyond=beyond)
    acc = Accounts()
    acc.add("city", PASSWORD)
    acc.add("odd", PASSWORD, ODD_DISTRICT)
    clients = []
    for name in ("city", "odd"):
        # Entered: one event loop and its worker threads for the test (PostgreSQL: a connection per thread).
        c = TestClient(create_app(centre, acc, secure_cookies=False), raise_server_exceptions=False).__enter__()
        t = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf": t},
                      follow_redirects=False).status_code == 303
        clients.append(c)
    districts = [r["district"] for r in store.query("SELECT DISTINCT district FROM venues")]
    wards = [(r["district"], r["ward"]) for r in store.query("SELECT DISTINCT district, ward FROM venues")]
    all_venues = [r["venue_id"] for r in store.query("SELECT venue_id FROM venues ORDER BY venue_id")]
    requests = every_request(districts, wards, venues + all_venues[:3])
    return clients[0], clients[1], requests


def failures(client: TestClient, requests: list[str]) -> list[str]:
    bad = []
    for path in requests:
        r = client.get(path, follow_redirects=False)
        if r.status_code >= 500:
            bad.append(f"{r.status_code} {urllib.parse.unquote(path)[:120]}")
        elif r.status_code == 200 and r.headers["content-type"].startswith("application/json"):
            r.json()  # JSON that parses: no NaN or Infinity
        elif r.status_code == 200 and r.headers["content-type"].startswith("text/csv"):
            assert r.text.startswith("\ufeff") and r.text.count("\n") >= 1, path
    return bad


@pytest.fixture(params=["sqlite", "postgres"])
def extreme_store(request, tmp_path):
    if request.param == "sqlite":
        store = open_store(tmp_path / "centre.sqlite3")
    else:
        store = open_store(request.getfixturevalue("pg_url"))
    yield store
    store.close()


@pytest.mark.parametrize("beyond", [False, True], ids=["within-a-date", "beyond-a-date-or-64-bits"])
def test_every_route_answers_whatever_the_store_holds(extreme_store, beyond):
    city, odd, requests = serve_extremes(extreme_store, beyond=beyond)
    try:
        assert len(requests) > 150
        bad = failures(city, requests) + failures(odd, requests)
        assert bad == [], f"{len(bad)} of {2 * len(requests)} answers were 5xx:\n" + "\n".join(bad[:40])
        # the odd district's own pages show its odd names, escaped
        page = odd.get("/district/" + urllib.parse.quote(ODD_DISTRICT, safe="")).text
        assert "&lt;b&gt;&amp;" in page and "<b>&" not in page
        kiosks = city.get("/api/v1/kiosks").json()["kiosks"]
        assert kiosks and all(k["last_heard"] is None or FIRST <= k["last_heard"] <= LAST for k in kiosks)
        if not beyond:
            assert any(k["last_heard"] == LAST for k in kiosks)
    finally:
        city.__exit__(None, None, None)
        odd.__exit__(None, None, None)


@pytest.fixture(scope="module")
def pg_city_client(postgres_server):  # noqa: F811
    """The city account's client over a PostgreSQL store (which cannot hold a NUL in text)."""
    store = open_store(postgres_server.new_database())
    acc = Accounts()
    acc.add("city", PASSWORD)
    with TestClient(create_app(Centre(store), acc, secure_cookies=False), raise_server_exceptions=False) as c:
        t = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"name": "city", "password": PASSWORD, "csrf": t})
        yield c
    store.close()


@pytest.mark.parametrize("path, name", [
    ("/api/v1/history?days=abc", "days"), ("/api/v1/history?days=1.5", "days"), ("/api/v1/history?days=0", "days"),
    ("/api/v1/history?days=121", "days"), ("/api/v1/inspection?offset=1000000000000000000000", "offset"),
    ("/api/v1/inspection?offset=-1", "offset"), ("/api/v1/inspection?limit=abc", "limit"),
    ("/api/v1/inspection?limit=0", "limit"), ("/api/v1/inspection?kind=nonsense", "kind"),
    ("/api/v1/inspection?district=a%00b", "district"), ("/api/v1/history?venue_id=%00", "venue_id"),
    ("/api/v1/venues/a%00b", "venue_id"), ("/api/v1/districts/%00", "name"),
    ("/api/v1/districts/x/wards/%01", "ward"), ("/api/v1/kiosks?district=" + "x" * 201, "district"),
    ("/inspection?offset=abc", "offset"), ("/venue/%00", "venue_id"), ("/charts/history.svg?venue_id=%00", "venue_id"),
    ("/inspection.csv?kind=%00", "kind"), ("/district/%00", "name"), ("/charts/pie.svg", "chart"),
])
def test_bad_parameters_get_400_naming_the_parameter(pg_city_client, path, name):
    r = pg_city_client.get(path, follow_redirects=False)
    assert r.status_code == 400, (path, r.status_code, r.text[:200])
    if path.startswith("/api/"):
        assert r.json()["parameter"] == name and r.json()["error"].startswith(name + ":")
    else:
        assert f"{name}:" in r.text
