#!/usr/bin/env python3
"""The inspection campaign's screenshots in docs/screenshots/, from a simulated city and its campaign.

A city of --venues venues with today's scans and a few days of history (the suite's seeded city), its
registry's kinds and positions, two inspectors and a five-day campaign whose visits so far were recorded as
``kiosk simulate --campaign`` records them. Then headless Chromium takes:

* inspector-day.png, inspector-visit.png, inspector-offline.png: the phone, 390x844 (device pixel ratio 2);
* campaign-report.png and campaign.png: the official's report and visit list, desktop 1280 wide.

Usage: .venv/bin/python scripts/inspection_screenshots.py [--venues 300] [--out docs/screenshots]
Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PASSWORD = "correct horse battery"


def build(tmp: Path, venues: int):
    from centre_helpers import LiveServer, seeded_city
    from kiosk.testing import campaign
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.store import open_store
    from kiosk.centre.web import create_app

    store = open_store(tmp / "centre.sqlite3")
    city = seeded_city(store, venues=venues, history_days=7)
    districts = sorted({v.district for v in city.venues})
    accounts = Accounts({})
    accounts.add("city", PASSWORD)
    accounts.add("lan.nguyen", PASSWORD, role="inspector", districts=districts[:2])
    accounts.add("minh.tran", PASSWORD, role="inspector", districts=districts[1:])
    # 8:40 in the morning, the city's time: today's visits are still to make, the earlier days' are done.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    morning = datetime.now(ZoneInfo(city.timezone)).replace(hour=8, minute=40, second=0, microsecond=0).timestamp()
    centre = Centre(store, Settings(grace_hour=0, clock=lambda: morning))
    done = campaign.run(centre, accounts, "Kiểm tra mã QR tháng 12", days=5, sample_share=0.25,
                                   venues=city.venues, seed=7, now=morning)
    server = LiveServer(create_app(centre, accounts, secure_cookies=False))
    return server, store, done


def browser(width: int, height: int, phone: bool):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
              f"--user-data-dir={tempfile.mkdtemp(prefix='shots-')}", f"--window-size={width},{height}", "--lang=vi",
              "--hide-scrollbars"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                   "deviceScaleFactor": 2 if phone else 1,
                                                                   "mobile": phone})
    return driver


def login(driver, url: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    time.sleep(0.5)


def wide(driver) -> int:
    return driver.execute_script("return document.documentElement.scrollWidth")


def phone_shots(url: str, out: Path, tmp: Path) -> None:
    from selenium.webdriver.common.by import By

    d = browser(390, 844, True)
    try:
        login(d, url, "lan.nguyen")
        d.get(url + "/field/day")
        time.sleep(1.0)  # the service worker registers and keeps the day's pages
        assert wide(d) <= 390, f"day list {wide(d)} px wide"
        d.save_screenshot(str(out / "inspector-day.png"))
        todo = [li for li in d.find_elements(By.CSS_SELECTOR, "li.visit") if "done" not in li.get_attribute("class")]
        (todo or d.find_elements(By.CSS_SELECTOR, "li.visit"))[0].find_element(By.CSS_SELECTOR, "a.record").click()
        time.sleep(0.5)
        for item, answer in (("code_created", "yes"), ("posted_entrance", "yes"), ("posting_ok", "no"),
                             ("visitors_guided", "yes"), ("scanning", "yes"), ("kiosk_working", "yes")):
            for choice in d.find_elements(By.CSS_SELECTOR, f"input[name={item}][value={answer}] + span"):
                choice.click()  # the kiosk's item only where the venue has one
        d.find_element(By.ID, "note").send_keys("Mã in quá nhỏ, đã hướng dẫn in lại khổ A4")
        import segno

        buf = io.BytesIO()
        segno.make("venue:poster", error="m").save(buf, kind="png", scale=10, border=4)
        (tmp / "poster.png").write_bytes(buf.getvalue())
        d.find_element(By.ID, "photo").send_keys(str(tmp / "poster.png"))
        d.find_element(By.CSS_SELECTOR, "input[name=outcome][value=reminded] + span").click()
        d.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        assert wide(d) <= 390, f"visit form {wide(d)} px wide"
        d.save_screenshot(str(out / "inspector-visit.png"))
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                               "downloadThroughput": -1, "uploadThroughput": -1})
        d.find_element(By.ID, "save").click()
        time.sleep(0.5)
        assert d.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "1", "the visit was not saved"
        d.get(url + "/field/day")
        time.sleep(0.8)
        d.save_screenshot(str(out / "inspector-offline.png"))
    finally:
        d.quit()


def desktop_shots(url: str, out: Path, campaign_id: str) -> None:
    d = browser(1280, 900, False)
    try:
        login(d, url, "city")
        d.get(f"{url}/inspection-report?campaign_id={campaign_id}")
        time.sleep(0.5)
        d.save_screenshot(str(out / "campaign-report.png"))
        d.get(f"{url}/campaigns/{campaign_id}")
        time.sleep(0.5)
        d.save_screenshot(str(out / "campaign.png"))
    finally:
        d.quit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venues", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inspection-shots-") as t:
        tmp = Path(t)
        server, store, done = build(tmp, args.venues)
        try:
            phone_shots(server.url, out, tmp)
            desktop_shots(server.url, out, done["campaign_id"])
        finally:
            server.stop()
            store.close()
    for name in ("inspector-day", "inspector-visit", "inspector-offline", "campaign-report", "campaign"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
