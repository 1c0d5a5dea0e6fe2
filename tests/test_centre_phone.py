"""Every dashboard page on a phone (390x844) in headless Chromium, and charts a person can read (issue 21.6).

No page scrolls sideways (tables of figures scroll in their own box, lists become cards); chart text is at
least 11 px as drawn on the page; a chart's legend sits above its plot, never over a line; a past day's
page keeps its day; the venue page speaks the page's language. One browser and one server for the module.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote

import pytest

from kiosk.centre import charts
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from centre_helpers import LiveServer, seeded_city, wait_for
from chromium import chromium, needs_chromium

PASSWORD = "correct horse battery"
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def phone():
    with chromium(390, 844) as driver:
        yield driver


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("phone") / "centre.sqlite3")
    city = seeded_city(store, venues=60, share=0.5)
    accounts = Accounts({})
    accounts.add("city", PASSWORD, None)
    centre = Centre(store, Settings(grace_hour=0, offline_hours=1.0))
    server = LiveServer(create_app(centre, accounts, secure_cookies=False, refresh_seconds=0))
    yield server, city, centre
    server.stop()
    store.close()


def login(driver, url):
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(url + "/login")
    driver.find_element(By.ID, "name").send_keys("city")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    assert wait_for(lambda: "/login" not in driver.current_url, 10)


def test_every_page_fits_a_phone_and_its_charts_are_legible(phone, site):
    from selenium.webdriver.common.by import By

    server, city, centre = site
    login(phone, server.url)
    district = centre.districts()[0]
    ward = centre.district(district)["wards"][0]["name"]
    venue = next(k for k in city.kiosks if not k.condition).venue.venue_id
    past = (date.fromisoformat(centre.settings.today()) - timedelta(days=2)).isoformat()
    pages = ["/", f"/?day={past}", f"/district/{quote(district)}", f"/district/{quote(district)}/ward/{quote(ward)}",
             f"/venue/{quote(venue)}", "/inspection", f"/inspection?district={quote(district)}&sort=since&order=desc",
             "/versions"]
    for path in pages:
        phone.get(server.url + path)
        assert wait_for(lambda: phone.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"), 10), path
        wide = phone.execute_script("return document.documentElement.scrollWidth")
        assert wide <= phone.execute_script("return window.innerWidth"), (path, wide)
        for img in phone.find_elements(By.CSS_SELECTOR, "img.chart, .charts img"):
            # text drawn at FONT units in a 480-unit-wide chart, shown img.width pixels wide
            assert charts.FONT * img.size["width"] / 480 >= 11, (path, img.size)
    # a past day's page says so and keeps the day on its charts and links
    phone.get(server.url + f"/?day={past}")
    assert phone.find_element(By.ID, "past-day-note").is_displayed()
    assert all(f"day={past}" in i.get_attribute("src") for i in phone.find_elements(By.CSS_SELECTOR, ".charts img"))
    # the venue page in the page's language: no True/False, no English headers
    phone.get(server.url + f"/venue/{quote(venue)}")
    table = phone.find_element(By.ID, "kiosks-table").get_attribute("outerHTML")
    assert "True" not in table and "False" not in table and ">camera<" not in table and ">display<" not in table
    # the inspection list on a phone: cards, each value under its label
    phone.get(server.url + "/inspection")
    first = phone.find_element(By.CSS_SELECTOR, "#inspection-table tbody tr")
    label = phone.execute_script("return getComputedStyle(arguments[0], '::before').content",
                                 first.find_element(By.CSS_SELECTOR, "td"))
    assert first.size["width"] <= 390 and "Vấn đề" in label


def test_a_chart_s_legend_is_above_its_plot_and_its_text_is_large_enough():
    svg = charts.lines([("Địa điểm có lượt quét", [5, 9, 7], "l1"), ("Địa điểm có mã", [20, 20, 24], "l2")],
                       ["12-01", "12-02", "12-03"], "coverage")
    legend_y = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="legend', svg)]
    line_y = [float(p.split(",")[1]) for pts in re.findall(r'points="([^"]+)"', svg) for p in pts.split()]
    assert len(legend_y) == 2 and max(legend_y) < min(line_y) - charts.FONT / 2  # its own band, above the lines
    sizes = [int(n) for n in re.findall(r"font:(\d+)px", svg)]
    assert sizes and min(sizes) * 330 / 480 >= 11  # on a phone's 330-px-wide chart
