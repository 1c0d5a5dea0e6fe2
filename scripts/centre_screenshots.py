#!/usr/bin/env python3
"""The centre's screenshots in docs/screenshots/centre-*.png, from a simulated city with a month of history.

Starts a mosquitto (free port, temporary directory), a centre ingest into a SQLite store, and
``kiosk simulate``'s city: 30 days of signed counts through the ingest, then the kiosks' announcement,
a few hundred check-ins on the day's curve and their periodic health. Then the dashboard (uvicorn in
this process) is photographed in headless Chromium at a desktop's 1280x1000 and a phone's 390x844:
the city overview, a district, a ward, a venue and the inspection list, in Vietnamese (the default).

Usage: .venv/bin/python scripts/centre_screenshots.py [--venues 600] [--out docs/screenshots]
Needs Debian's mosquitto, chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PASSWORD = "screenshots only"
SIZES = {"desktop": (1280, 1000), "phone": (390, 844)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venues", type=int, default=600)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from centre_helpers import LiveServer, registry_of, wait_for
    from conftest import make_broker
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.queries import Centre, Settings
    from kiosk.testing.city import City, CitySimulator
    from kiosk.centre.store import open_store
    from kiosk.centre.watch import IngestWorker
    from kiosk.centre.web import create_app

    tmp = Path(tempfile.mkdtemp(prefix="centre-shots-"))
    out = Path(args.out)
    broker = make_broker(tmp)
    city = City.build(args.venues, 0.5, seed=21, offline=args.venues // 100, silent=args.venues // 200,
                      camera_down=args.venues // 150, display_down=args.venues // 300)
    store = open_store(tmp / "centre.sqlite3")
    registry = registry_of(city)
    store.load_fleet(registry)
    store.import_venues(city.venues, day=city.local_now().date().isoformat())
    worker = IngestWorker(broker.url, store, registry, flush_seconds=0.2)
    worker.start()
    worker.connected.wait(10)
    sim = CitySimulator(broker.url, city, connections=2, seed=21)
    sim.connect()
    sim.seed_history(30, scans_per_day=5)  # a day like today (its check-ins below) in scale
    sim.announce()
    sim.run(0, 0, checkins=args.venues * 2, health_every=60)
    sim.finish()
    sim.close()
    centre = Centre(store, Settings(grace_hour=0))
    want = sum(k.scans for k in city.kiosks)
    wait_for(lambda: centre.overview()["totals"]["scans"] >= want, 30)
    accounts = Accounts({})
    accounts.add("city", PASSWORD, None)
    server = LiveServer(create_app(centre, accounts, secure_cookies=False, refresh_seconds=0))
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp / 'chrome'}",
              "--lang=vi"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(server.url + "/login")
        driver.find_element(By.ID, "name").send_keys("city")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login-button").click()
        wait_for(lambda: "/login" not in driver.current_url, 10)
        o = centre.overview()
        district = max(o["districts"], key=lambda d: d["scans"])["name"]
        ward = max(centre.district(district)["wards"], key=lambda w: w["scans"])["name"]
        venue = max((k for k in city.kiosks if not k.condition), key=lambda k: k.scans).venue.venue_id
        from urllib.parse import quote

        pages = {"city": "/", "district": f"/district/{quote(district)}",
                 "ward": f"/district/{quote(district)}/ward/{quote(ward)}", "venue": f"/venue/{quote(venue)}",
                 "inspection": "/inspection"}
        for size, (w, h) in SIZES.items():
            driver.set_window_size(w, h)
            for name, path in pages.items():
                driver.get(server.url + path)
                # every chart drawn before the picture is taken
                wait_for(lambda: driver.execute_script(
                    "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"), 10)
                wide = driver.execute_script("return document.documentElement.scrollWidth")
                if wide > driver.execute_script("return window.innerWidth"):
                    print(f"warning: {name} at {size} scrolls sideways ({wide} px wide)")
                target = out / f"centre-{name}-{size}.png"
                driver.save_screenshot(str(target))
                print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
    finally:
        driver.quit()
        server.stop()
        worker.stop()
        store.close()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
