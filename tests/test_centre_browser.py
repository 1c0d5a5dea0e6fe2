"""The dashboard in a real headless Chromium (Debian's, through chromedriver and Selenium).

A district official logs in, reads the district table and the inspection list, and the figures
are the simulated city's; another district's pages stay closed. One browser for the module.
The software page's screenshots land in docs/screenshots/ (set KIOSK_SCREENSHOTS=1 to refresh them); the
other pages' come from scripts/centre_screenshots.py (a simulated city with its history).
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from centre_helpers import LiveServer, seeded_city, wait_for
from chromium import chromium, needs_chromium

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
SHOTS = ROOT / "docs" / "screenshots"

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with chromium(1280, 1000) as driver:
        yield driver


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    store = open_store(tmp / "centre.sqlite3")
    city = seeded_city(store, venues=80, share=0.5)
    districts = sorted({v.district for v in city.venues})
    accounts = Accounts({})
    accounts.add("city", PASSWORD, None)
    accounts.add("d0", PASSWORD, districts[0])
    centre = Centre(store, Settings(grace_hour=0, offline_hours=1.0))
    server = LiveServer(create_app(centre, accounts, secure_cookies=False, refresh_seconds=1.0))
    yield server, city, districts, centre
    server.stop()
    store.close()


def login(driver, url, name):
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(url + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    assert wait_for(lambda: "/login" not in driver.current_url, 10)


def shot(driver, name):
    if os.environ.get("KIOSK_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / name))


def test_district_official_reads_the_district_and_the_inspection_list(browser, site):
    from selenium.webdriver.common.by import By

    server, city, districts, centre = site
    d0 = districts[0]
    login(browser, server.url, "d0")
    assert browser.find_element(By.ID, "district-name").text == d0
    mine = [k for k in city.kiosks if k.venue.district == d0]
    venues = [v for v in city.venues if v.district == d0]
    assert browser.find_element(By.ID, "total-scans").text == str(sum(k.scans for k in mine))
    assert browser.find_element(By.ID, "total-venues_with_code").text == str(len(venues))
    rows = browser.find_elements(By.CSS_SELECTOR, "#wards-table tbody tr")
    by_ward = {}
    for k in mine:
        by_ward[k.venue.ward] = by_ward.get(k.venue.ward, 0) + k.scans
    seen = {}
    for r in rows:
        cells = {c.get_attribute("data-col"): c.text for c in r.find_elements(By.CSS_SELECTOR, "td")}
        seen[r.get_attribute("data-name")] = int(cells["scans"])
        assert int(cells["venues_with_code"]) == sum(1 for v in venues if v.venue_id and v.ward == r.get_attribute("data-name"))
    assert seen == {w: by_ward.get(w, 0) for w in {v.ward for v in venues}}
    # live refresh: the page polls its API twin and marks when it did
    assert wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed"), 10)
    # times read on the city's clock, whatever the browser's (this Chromium runs in the machine's zone)
    stamp = browser.find_element(By.CSS_SELECTOR, "[data-f=generated]")
    city_time = datetime.fromisoformat(stamp.get_attribute("data-iso").replace("Z", "+00:00")).astimezone(
        ZoneInfo(centre.settings.timezone))
    assert city_time.strftime("%H:%M") in stamp.text, stamp.text

    browser.find_element(By.ID, "nav-inspection").click()
    assert wait_for(lambda: "/inspection" in browser.current_url, 10)
    want = centre.inspection(centre_scope(d0))
    assert browser.find_element(By.ID, "inspection-total").text == str(want["total"])
    trs = browser.find_elements(By.CSS_SELECTOR, "#inspection-table tbody tr")
    got = sorted((t.get_attribute("data-why"), t.get_attribute("data-venue")) for t in trs)
    assert got == sorted((r["why"], r["venue_id"]) for r in want["rows"])
    offline = {k.venue.venue_id for k in mine if k.condition == "offline"}
    assert offline == {v for why, v in got if why == "offline"}


def centre_scope(district):
    from kiosk.centre.queries import Scope

    return Scope(district=district)


def test_district_account_cannot_reach_another_district(browser, site):
    from selenium.webdriver.common.by import By

    server, city, districts, _ = site
    login(browser, server.url, "d0")
    browser.get(f"{server.url}/district/{districts[1]}")
    assert browser.find_element(By.ID, "error").text == "403"
    browser.get(f"{server.url}/api/v1/districts/{districts[1]}")
    assert "not your district" in browser.page_source
    browser.get(f"{server.url}/api/v1/overview")
    assert "not your district" in browser.page_source


def test_city_overview_in_english(browser, site):
    from selenium.webdriver.common.by import By

    server, city, districts, _ = site
    login(browser, server.url, "city")
    browser.find_element(By.ID, "lang-en").click()
    assert wait_for(lambda: page_lang(browser) == "en", 10)
    assert browser.find_element(By.ID, "total-scans").text == str(sum(k.scans for k in city.kiosks))
    names = [r.get_attribute("data-name") for r in browser.find_elements(By.CSS_SELECTOR, "#districts-table tbody tr")]
    assert names == districts
    assert "Venues with a code" in browser.page_source
    imgs = browser.find_elements(By.CSS_SELECTOR, "img.live")
    assert len(imgs) == 3 and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)
    browser.find_element(By.ID, "lang-vi").click()
    assert wait_for(lambda: page_lang(browser) == "vi", 10)


def page_lang(driver) -> str | None:
    """The page's language, or None while a form's answer replaces the page (its elements go stale)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return driver.execute_script("return document.documentElement.getAttribute('lang')")
    except WebDriverException:
        return None


def csp_violations(driver) -> list[str]:
    """Console messages about the Content-Security-Policy since the last call."""
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Content-Security-Policy" in e["message"]]


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_log_in_switch_language_and_log_out_through_the_forms_under_the_csp(browser, site, size):
    from selenium.webdriver.common.by import By

    server, city, districts, _ = site
    browser.set_window_size(*size)
    try:
        csp_violations(browser)  # forget earlier tests' messages
        login(browser, server.url, "d0")
        assert browser.find_element(By.ID, "district-name").text == districts[0]
        assert "Content-Security-Policy" not in browser.page_source  # a header, never a <meta> we rely on
        browser.find_element(By.ID, "lang-en").click()
        assert wait_for(lambda: page_lang(browser) == "en", 10)
        assert "/district/" in browser.current_url
        assert "Venues with a code" in browser.page_source
        # the page's own script ran (it fills in times and polls its API) under the policy
        assert wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed"), 10)
        browser.find_element(By.ID, "logout-button").click()
        assert wait_for(lambda: browser.current_url.endswith("/login"), 10)
        browser.get(server.url + "/api/v1/me")
        assert "login required" in browser.page_source  # the session ended on the server
        browser.get(server.url + "/login")
        browser.find_element(By.ID, "lang-vi").click()  # the language form works before a login too
        assert wait_for(lambda: page_lang(browser) == "vi", 10)
        assert csp_violations(browser) == []
    finally:
        browser.set_window_size(1280, 1000)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_the_fleets_software_page_names_the_kiosks_behind(browser, site, size):
    """The kiosks that are well report 1.2.0 in their signed info, two of them 1.1.0, the others are still on
    the simulator's version: the city's page lists every kiosk behind 1.2.0, live-refreshed, without sideways
    scrolling of the page on a phone."""
    from selenium.webdriver.common.by import By

    from kiosk.centre.ingest import Ingest
    from centre_helpers import registry_of

    server, city, districts, centre = site
    ingest = Ingest(registry_of(city))
    well = [k for k in city.kiosks if not k.condition]
    for i, k in enumerate(well):
        ingest.handle(k.topic("info"), k.signed("info", {**k.info(time.time()), "version": "1.1.0" if i < 2 else
                                                         "1.2.0"}))
    centre.store.write(ingest.take())
    behind = {f"{k.site}/{k.device}" for k in well[:2] + [k for k in city.kiosks if k.condition]}
    browser.set_window_size(*size)
    try:
        csp_violations(browser)
        login(browser, server.url, "city")
        browser.find_element(By.ID, "nav-versions").click()
        assert wait_for(lambda: "/versions" in browser.current_url, 10)
        assert browser.find_element(By.ID, "versions-target").text == "1.2.0"
        assert browser.find_element(By.ID, "versions-behind").text == str(len(behind))
        rows = {r.get_attribute("data-kiosk") for r in
                browser.find_elements(By.CSS_SELECTOR, "#versions-behind-table tbody tr")}
        assert rows == behind
        assert wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshed"), 10)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        shot(browser, f"centre-versions-{'phone' if size[0] < 500 else 'desktop'}.png")
        assert csp_violations(browser) == []
    finally:
        browser.set_window_size(1280, 1000)
