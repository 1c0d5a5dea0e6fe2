"""The API is described and fuzzed (issue 19 item 4).

``/api/v1/openapi.json`` must stay true: every route the app serves is described and every
described route is served. Then schemathesis (the ecosystem's fuzzer for OpenAPI) drives every
described route from the description, as a city, a district and an inspector account, in process,
derandomized (the same cases every run) with few examples a route: no answer is a 5xx, every
answer conforms to its description (status, content type, JSON schema), and no answer holds a
district outside the account's.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from kiosk.centre.web.openapi import describe
from centre_helpers import seeded_city

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app over a small city, and a session cookie for each kind of account."""
    tmp = tmp_path_factory.mktemp("openapi")
    store = open_store(tmp / "centre.sqlite3")
    city = seeded_city(store, venues=45, history_days=5)
    districts = sorted({v.district for v in city.venues})
    acc = Accounts()
    acc.add("city", PASSWORD)
    acc.add("district", PASSWORD, districts[0])
    acc.add("inspector", PASSWORD, role="inspector", districts=districts[1:3])
    # No login limit here: the fuzzer's own logins must not lock the accounts the checks use.
    from kiosk.centre.limiter import LoginLimiter

    app = create_app(Centre(store, Settings(grace_hour=0)), acc, secure_cookies=False,
                     limiter=LoginLimiter(failures=10**9))
    campaign = _campaign(app.state.dashboard.centre, acc, districts[1:3])
    cookies = {}
    with TestClient(app) as c:
        for name in ("city", "district", "inspector"):
            c.cookies.clear()
            t = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf": t},
                          follow_redirects=False).status_code == 303
            cookies[name] = c.cookies.get("centre_session")
    allowed = {"city": set(districts), "district": {districts[0]}, "inspector": set(districts[1:3])}
    # The city's real names, so that the cases also ask for other districts' records by name.
    real = {"districts": districts, "wards": sorted({(v.district, v.ward) for v in city.venues}),
            "venues": [next(v.venue_id for v in city.venues if v.district == d) for d in districts],
            "campaigns": [(campaign.campaign_id, r["venue_id"]) for r in _plan_sample(store, campaign)]}
    yield app, cookies, allowed, real
    store.close()


def _campaign(centre, accounts, districts):
    """A campaign over every district (its visit form and report are asked for by their real ids too)."""
    from kiosk.centre import campaigns

    c = campaigns.Campaign("c-openapi", "Kiểm tra", centre.settings.today(), centre.settings.today(),
                           tuple(districts), (), 0.2, ("inspector",), "city", 0.0)
    return campaigns.create(centre, c, campaigns.inspectors(accounts))[0]


def _plan_sample(store, campaign):
    from kiosk.centre import campaigns

    plan = campaigns.plan(store, campaign.campaign_id)
    return [next(r for r in plan if r["district"] == d) for d in sorted({r["district"] for r in plan})]


def test_every_route_is_described_and_every_description_is_served(served):
    app, *_ = served
    served_routes = set()
    for r in app.routes:
        if isinstance(r, Route):
            for m in r.methods - {"HEAD"}:
                served_routes.add((m.lower(), r.path))
        else:
            assert isinstance(r, Mount) and r.path == "/static"  # files, not routes
    doc = describe()
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served_routes == described
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            names = set(re.findall(r"{(\w+)}", path))
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == names, path
            assert op["responses"] and all(k.isdigit() for k in op["responses"]), path
    with TestClient(app) as c:
        assert c.get("/api/v1/openapi.json").json() == json.loads(json.dumps(doc))


def test_the_description_is_valid_openapi(served):
    # schemathesis refuses a description that is not valid OpenAPI 3.0
    schema = schemathesis.openapi.from_dict(describe())
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in describe()["paths"].values())


def _districts_in(value, out: set, echo: bool = True) -> set:
    """Every district a JSON answer names (``echo`` False: not the ``scope`` that repeats the question)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "scope" and not echo:
                continue
            if k == "district" and isinstance(v, str):
                out.add(v)
            elif k == "districts" and isinstance(v, list):
                out.update(x for x in v if isinstance(x, str))
            else:
                _districts_in(v, out, echo)
    elif isinstance(value, list):
        for v in value:
            _districts_in(v, out, echo)
    return out


@pytest.fixture(scope="module")
def api_schema(served):
    app, *_ = served
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


OPERATIONS = [(m, p) for p, ops in describe()["paths"].items() for m in ops]


@pytest.mark.parametrize("account", ["city", "district", "inspector"])
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_fuzz_every_route_as_each_kind_of_account(api_schema, served, account, method, path):
    """Cases drawn from the route's description; few a route and the same every run (derandomized)."""
    from hypothesis import given

    operation = api_schema[path][method.upper()]

    @given(case=operation.as_strategy())
    @settings(max_examples=8, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        fuzz(case, served, account)

    run()


@pytest.mark.parametrize("account", ["city", "district", "inspector"])
@pytest.mark.parametrize("method, path", [(m, p) for m, p in OPERATIONS if m == "get" and p != "/login"],
                         ids=[p for m, p in OPERATIONS if m == "get" and p != "/login"])
def test_every_route_with_every_real_name_as_each_kind_of_account(api_schema, served, account, method, path):
    """The fuzzer's strings rarely hit a real district: ask for each real district, ward and venue too."""
    _, _, _, real = served
    operation = api_schema[path][method.upper()]
    names = {p["name"] for p in describe()["paths"][path][method].get("parameters", [])}
    cases = []
    if "ward" in names:
        cases = [dict(path_parameters={"name": d, "ward": w}) for d, w in real["wards"]]
    elif "name" in names:
        cases = [dict(path_parameters={"name": d}) for d in real["districts"]]
    elif "{campaign_id}" in path:
        cases = [dict(path_parameters={"campaign_id": c, **({"venue_id": v} if "{venue_id}" in path else {})})
                 for c, v in real["campaigns"]]
    elif "venue_id" in names and "{venue_id}" in path:
        cases = [dict(path_parameters={"venue_id": v}) for v in real["venues"]]
    elif "chart" in names:
        cases = [dict(path_parameters={"chart": c}, query=q) for c in ("history", "coverage", "hourly")
                 for q in [{}, *({"district": d} for d in real["districts"]), *({"venue_id": v} for v in real["venues"])]]
    else:
        cases = [dict(query={})]
        if "district" in names:
            cases += [dict(query={"district": d}) for d in real["districts"]]
        if "venue_id" in names:
            cases += [dict(query={"venue_id": v}) for v in real["venues"]]
    for kw in cases:
        fuzz(operation.Case(**kw), served, account)


def fuzz(case, served, account: str) -> None:
    app, cookies, allowed, _ = served
    response = case.call(cookies={"centre_session": cookies[account]})
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.status_code)
    case.validate_response(response)
    if response.status_code == 200 and response.headers.get("content-type", [""])[0].startswith("application/json"):
        # The city may ask for a district that does not exist (its scope repeats the question); any
        # other account's answer, scope included, names only its own districts.
        seen = _districts_in(response.json(), set(), echo=account != "city")
        assert seen <= allowed[account], (account, case.formatted_path, seen - allowed[account])
    if response.status_code == 200 and "text/csv" in response.headers.get("content-type", [""])[0]:
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
        seen = {r["district"] for r in rows if r.get("district")}
        assert seen <= allowed[account], (account, case.formatted_path, seen - allowed[account])
