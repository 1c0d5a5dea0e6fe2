"""The inspector's phone in a real headless Chromium at 390x844: the day's visits and the visit form fit the
screen with large touch targets; a draft survives a reload (its photo too); with the network switched off
(the browser offline and the centre unreachable) the pages come from the service worker and a visit with
its photo waits in the outbox; with the network back it is sent once and its photo checked.
One browser and one server for the module.
"""

from __future__ import annotations

import io
import threading

import pytest

from centre_helpers import seeded_city, wait_for
from chromium import chromium, needs_chromium
from kiosk.centre import campaigns, visits
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.venue_places import load_places
from kiosk.centre.web import create_app
from kiosk.testing.campaign import places_of

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}

pytestmark = needs_chromium


class Server:
    """uvicorn in a thread on one port, stopped and started again on the same port (the network cut off)."""

    def __init__(self, app):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off", proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server.started, 10), "uvicorn did not start"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("field")
    store = open_store(tmp / "centre.sqlite3")
    city = seeded_city(store, venues=40, history_days=2)
    load_places(store, places_of(city.venues))
    districts = sorted({v.district for v in city.venues})
    accounts = Accounts({})
    accounts.add("i1", PASSWORD, role="inspector", districts=districts[:2])
    accounts.add("i2", PASSWORD, role="inspector", districts=districts[:2])  # a colleague sharing the phone
    centre = Centre(store, Settings(grace_hour=0))
    today = centre.settings.today()
    c, _ = campaigns.create(centre, campaigns.Campaign("c-field-test", "Kiểm tra tháng 12", today, today,
                                                       tuple(districts[:2]), (), 0.6, ("i1", "i2"), "city", 0.0),
                            campaigns.inspectors(accounts))
    server = Server(create_app(centre, accounts, secure_cookies=False))
    yield server, centre, c, tmp
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def phone():
    with chromium(PHONE["width"], PHONE["height"]) as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        driver.execute_cdp_cmd("Network.enable", {})
        yield driver


def network(driver, on: bool) -> None:
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": not on, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})


def fits_the_phone(driver) -> None:
    """No horizontal scroll at 390 px, and every button, link-button and choice at least 44 px tall and wide."""
    width = driver.execute_script("return document.documentElement.scrollWidth")
    wide = driver.execute_script("""return Array.from(document.querySelectorAll('*'))
        .filter(e => e.getBoundingClientRect().right > 390).map(e => e.tagName + '.' + e.className + '#' + e.id)
        .slice(0, 5);""")
    assert width <= 390, f"the page is {width} px wide: {wide}"
    small = driver.execute_script("""
        return Array.from(document.querySelectorAll('a.button, button, .choice span, .bar a'))
          .filter(e => e.offsetParent !== null)
          .map(e => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect().width, e.getBoundingClientRect().height])
          .filter(r => r[1] < 44 || r[2] < 44);""")
    assert small == [], small


def _log_in(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    assert wait_for(lambda: driver.current_url.endswith("/field/day"), 10)


def test_a_visit_recorded_offline_with_its_photo_reaches_the_centre_once_the_network_is_back(phone, site):
    from selenium.webdriver.common.by import By

    server, centre, campaign, tmp = site
    store = centre.store
    phone.get(server.url + "/login")
    _log_in(phone, "i1")

    # The day's visits: each with its reason and a map link; the pages are kept for the day.
    planned = campaigns.plan(store, campaign.campaign_id, inspector="i1")
    cards = phone.find_elements(By.CSS_SELECTOR, "#today li.visit")
    assert len(cards) == len(planned) > 0
    assert all(a.get_attribute("href").startswith("geo:") for a in phone.find_elements(By.CSS_SELECTOR, "a.map"))
    fits_the_phone(phone)
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-cached") == "1", 15)

    first = cards[0]
    venue_id = first.get_attribute("data-venue")
    first.find_element(By.CSS_SELECTOR, "a.record").click()
    assert wait_for(lambda: "/field/visit/" in phone.current_url, 10)
    form_url = phone.current_url
    fits_the_phone(phone)

    # A draft: answers and a note typed, then the page reloaded; nothing is lost.
    def choose(name: str, value: str):
        phone.find_element(By.CSS_SELECTOR, f"input[name={name}][value={value}] + span").click()

    for item in visits.CHECKLIST[:5]:
        choose(item, "no" if item == "posting_ok" else "yes")
    if phone.find_elements(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes]"):
        choose("kiosk_working", "yes")  # a venue with a kiosk: "does not apply" is not offered
    note = phone.find_element(By.ID, "note")
    note.send_keys("Mã in quá nhỏ, đã nhắc in lại khổ A4")
    poster = tmp / "poster.png"
    import segno

    buf = io.BytesIO()
    segno.make(f"venue:{venue_id}", error="m").save(buf, kind="png", scale=10, border=4)
    poster.write_bytes(buf.getvalue())
    phone.find_element(By.ID, "photo").send_keys(str(poster))
    assert wait_for(lambda: phone.find_element(By.ID, "photo-preview").is_displayed(), 5)
    phone.refresh()
    assert wait_for(lambda: phone.find_element(By.ID, "note").get_attribute("value") ==
                    "Mã in quá nhỏ, đã nhắc in lại khổ A4", 5)
    assert phone.find_element(By.CSS_SELECTOR, "input[name=posting_ok][value=no]").is_selected()
    assert wait_for(lambda: phone.find_element(By.ID, "photo-preview").is_displayed(), 5)  # the photo too

    # The network goes: the browser is offline and the centre cannot be reached.
    network(phone, False)
    server.stop()
    phone.get(form_url)  # from the service worker's cache
    assert wait_for(lambda: phone.find_elements(By.ID, "visit-form"), 10)
    assert phone.find_element(By.ID, "net").is_displayed()
    assert wait_for(lambda: phone.find_element(By.ID, "photo-preview").is_displayed(), 5)
    choose("outcome", "reminded")
    phone.find_element(By.ID, "save").click()
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "1", 10)
    saved_id = phone.find_element(By.TAG_NAME, "body").get_attribute("data-saved")
    assert saved_id and visits.get(store, saved_id) is None
    phone.get(server.url + "/field/day")  # the day's list, offline: the visit is shown as recorded here
    assert wait_for(lambda: phone.find_element(By.ID, "outbox").is_displayed(), 10)
    recorded = phone.find_element(By.CSS_SELECTOR, f'li.visit[data-venue="{venue_id}"] .state.local')
    assert wait_for(recorded.is_displayed, 5)

    # The network comes back: the outbox sends the visit, then its photo, once.
    server.start()
    network(phone, True)
    assert wait_for(lambda: (visits.get(store, saved_id) or {}).get("code_check") == "match", 30)
    stored = visits.get(store, saved_id)
    assert (stored["outcome"], stored["findings"]) == ("reminded", ["no_posting_ok"])
    assert stored["note"] == "Mã in quá nhỏ, đã nhắc in lại khổ A4"
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "0", 10)
    assert [v["visit_id"] for v in visits.of_venue(store, venue_id)] == [saved_id]
    errors = [e for e in phone.get_log("browser") if e["level"] == "SEVERE" and "Content Security Policy" in e["message"]]
    assert errors == []


def _outbox_and_caches(driver) -> tuple[int, list[str]]:
    """(visits waiting in the phone's outbox, the names of the page caches), read from any page of the site."""
    return tuple(driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const names = await caches.keys();
        const open = indexedDB.open("kiosk-field", 1);
        open.onupgradeneeded = () => { open.result.createObjectStore("outbox", {keyPath: "visit_id"});
                                       open.result.createObjectStore("drafts"); };
        open.onsuccess = () => {
          const req = open.result.transaction("outbox").objectStore("outbox").count();
          req.onsuccess = () => { open.result.close(); done([req.result, names]); };
        };"""))


def test_a_visit_saved_after_the_session_expired_waits_through_logout_and_is_sent_after_login(phone, site):
    """docs/inspection.md: a visit the centre refused for want of a session stays on the phone and goes after
    the next login; logging out forgets the day's pages kept on the phone, never the outbox."""
    from selenium.webdriver.common.by import By

    from kiosk.centre.sessions import end_account_sessions

    server, centre, campaign, _ = site
    store = centre.store
    phone.get(server.url + "/field/day")
    if "/login" in phone.current_url:  # run alone: log in first
        _log_in(phone, "i1")
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-cached") == "1", 15)
    card = phone.find_elements(By.CSS_SELECTOR, "#today li.visit")[-1]
    venue_id = card.get_attribute("data-venue")
    card.find_element(By.CSS_SELECTOR, "a.record").click()
    assert wait_for(lambda: phone.find_elements(By.ID, "visit-form"), 10)
    for item in visits.CHECKLIST[:5]:
        phone.find_element(By.CSS_SELECTOR, f"input[name={item}][value=yes] + span").click()
    if phone.find_elements(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes]"):
        phone.find_element(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes] + span").click()
    phone.find_element(By.CSS_SELECTOR, "input[name=outcome][value=compliant] + span").click()

    end_account_sessions(store, "i1")  # the session expires while the inspector is at the door
    phone.find_element(By.ID, "save").click()
    body = phone.find_element(By.TAG_NAME, "body")
    assert wait_for(lambda: body.get_attribute("data-outbox") == "1", 10)
    saved_id = body.get_attribute("data-saved")
    box = phone.find_element(By.ID, "outbox")
    assert wait_for(lambda: phone.find_element(By.ID, "outbox-text").text == box.get_attribute("data-login"), 10)
    assert visits.get(store, saved_id) is None

    phone.find_element(By.ID, "logout-button").click()
    assert wait_for(lambda: "/login" in phone.current_url, 10)
    assert wait_for(lambda: _outbox_and_caches(phone) == (1, []), 10), _outbox_and_caches(phone)

    _log_in(phone, "i1")
    assert wait_for(lambda: visits.get(store, saved_id) is not None, 30)
    assert visits.get(store, saved_id)["outcome"] == "compliant" and visits.get(store, saved_id)["venue_id"] == venue_id
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "0", 10)


def test_a_photo_the_centre_refuses_does_not_keep_its_visit_in_the_outbox(phone, site):
    """The visit is in; a photo refused for good (here: not an image) is not resent for ever."""
    from selenium.webdriver.common.by import By

    server, centre, _, tmp = site
    phone.get(server.url + "/field/day")
    if "/login" in phone.current_url:  # run alone: log in first
        _log_in(phone, "i1")
    card = phone.find_elements(By.CSS_SELECTOR, "#today li.visit")[1]
    card.find_element(By.CSS_SELECTOR, "a.record").click()
    assert wait_for(lambda: phone.find_elements(By.ID, "visit-form"), 10)
    for item in visits.CHECKLIST[:5]:
        phone.find_element(By.CSS_SELECTOR, f"input[name={item}][value=yes] + span").click()
    if phone.find_elements(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes]"):
        phone.find_element(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes] + span").click()
    phone.find_element(By.CSS_SELECTOR, "input[name=outcome][value=warned] + span").click()
    not_a_photo = tmp / "notes.txt"
    not_a_photo.write_text("not a photo")
    phone.find_element(By.ID, "photo").send_keys(str(not_a_photo))
    phone.find_element(By.ID, "save").click()
    body = phone.find_element(By.TAG_NAME, "body")
    assert wait_for(lambda: body.get_attribute("data-saved"), 10)
    saved_id = body.get_attribute("data-saved")
    assert wait_for(lambda: visits.get(centre.store, saved_id) is not None, 10)
    assert visits.get(centre.store, saved_id)["code_check"] == ""
    assert wait_for(lambda: body.get_attribute("data-outbox") == "0", 10), body.get_attribute("data-outbox")


def test_a_visit_waiting_on_a_shared_phone_goes_out_as_its_own_inspectors_not_the_colleagues(phone, site):
    from selenium.webdriver.common.by import By

    from kiosk.centre.sessions import end_account_sessions

    server, centre, _, _ = site
    store = centre.store
    phone.get(server.url + "/field/day")
    if "/login" in phone.current_url:
        _log_in(phone, "i1")
    card = phone.find_elements(By.CSS_SELECTOR, "#today li.visit")[2]
    card.find_element(By.CSS_SELECTOR, "a.record").click()
    assert wait_for(lambda: phone.find_elements(By.ID, "visit-form"), 10)
    for item in visits.CHECKLIST[:5]:
        phone.find_element(By.CSS_SELECTOR, f"input[name={item}][value=yes] + span").click()
    if phone.find_elements(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes]"):
        phone.find_element(By.CSS_SELECTOR, "input[name=kiosk_working][value=yes] + span").click()
    phone.find_element(By.CSS_SELECTOR, "input[name=outcome][value=compliant] + span").click()
    end_account_sessions(store, "i1")
    phone.find_element(By.ID, "save").click()
    body = phone.find_element(By.TAG_NAME, "body")
    assert wait_for(lambda: body.get_attribute("data-outbox") == "1", 10)
    saved_id = body.get_attribute("data-saved")

    phone.get(server.url + "/login")
    _log_in(phone, "i2")  # the colleague, a member of the same team, logs in on this phone
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "1", 10)
    phone.execute_script("document.querySelector('#logout-form').submit()")
    assert wait_for(lambda: "/login" in phone.current_url, 10)
    assert visits.get(store, saved_id) is None  # not recorded as i2's visit

    _log_in(phone, "i1")
    assert wait_for(lambda: visits.get(store, saved_id) is not None, 30)
    assert visits.get(store, saved_id)["inspector"] == "i1"


def test_logging_out_from_a_dashboard_page_forgets_the_days_pages_kept_on_the_phone(phone, site):
    """The field pages kept for offline use list the unannounced visits: any logout forgets them."""
    from selenium.webdriver.common.by import By

    server, _, _, _ = site
    phone.get(server.url + "/field/day")
    if "/login" in phone.current_url:
        _log_in(phone, "i1")
    assert wait_for(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-cached") == "1", 15)
    assert "field-pages" in _outbox_and_caches(phone)[1]
    phone.get(server.url + "/inspection")  # a dashboard page, not one of the phone's
    assert phone.find_elements(By.ID, "inspection-table")
    phone.find_element(By.ID, "logout-button").click()
    assert wait_for(lambda: "/login" in phone.current_url, 10)
    assert wait_for(lambda: "field-pages" not in _outbox_and_caches(phone)[1], 10), _outbox_and_caches(phone)
