"""The login limiter cannot be reset by a flood, stays in bounded memory, and is per name and per address
(issue 19 item 7). A clock we move; no sleeping."""

from __future__ import annotations


from kiosk.centre.limiter import LoginLimiter
from kiosk.testing.clock import FakeClock


def _rss() -> int:
    """This process's resident memory, bytes."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_flood_of_new_names_neither_unlocks_a_name_nor_grows_memory():
    clock = FakeClock()
    lim = LoginLimiter(failures=5, window=300, clock=clock)
    for _ in range(5):
        lim.failed("city", "203.0.113.1", known=True)
    assert lim.blocked("city", "198.51.100.1")
    base = _rss()
    for i in range(100_000):  # 100,000 invented names from 100,000 addresses (a botnet, or IPv6)
        lim.failed(f"guess-{i}", f"2001:db8::{i:x}", known=False)
        if i % 20_000 == 0:
            clock.t += 1
    grown = _rss() - base
    sizes = lim.size()
    assert sizes["names"] <= lim.max_names and sizes["addresses"] <= lim.max_addresses
    assert grown < 40 * 1024 * 1024, grown  # bounded: the old limiter grew 85 MB and then forgot everything
    assert lim.blocked("city", "198.51.100.1")  # still locked after the flood
    clock.t += 301
    assert not lim.blocked("city", "198.51.100.1")  # until its lockout ends


def test_invented_names_lock_like_real_ones_so_a_lock_tells_nothing():
    clock = FakeClock()
    lim = LoginLimiter(failures=3, window=300, clock=clock)
    for _ in range(3):
        lim.failed("nobody", "192.0.2.1", known=False)
        lim.failed("city", "192.0.2.2", known=True)
    assert lim.blocked("nobody", "192.0.2.9") and lim.blocked("city", "192.0.2.9")


def test_per_address_limit_is_ten_times_the_names():
    clock = FakeClock()
    lim = LoginLimiter(failures=5, window=300, clock=clock)
    assert lim.address_failures == 50
    for i in range(49):
        lim.failed(f"user{i % 9}", "192.0.2.1", known=True) if i % 5 else None
    assert not lim.blocked("someone-else", "192.0.2.1")
    for i in range(50):
        lim.failed(f"n{i}", "192.0.2.7", known=False)
    assert lim.blocked("someone-else", "192.0.2.7")  # one address cannot sweep names
    assert not lim.blocked("someone-else", "192.0.2.8")


def test_a_locked_address_survives_eviction():
    clock = FakeClock()
    lim = LoginLimiter(failures=50, window=300, address_failures=3, max_addresses=100, clock=clock)
    for _ in range(3):
        lim.failed("x", "192.0.2.66", known=False)
    assert lim.blocked("y", "192.0.2.66")
    for i in range(1000):
        lim.failed("x", f"10.0.{i // 256}.{i % 256}", known=False)
    assert lim.size()["addresses"] <= 100
    assert lim.blocked("y", "192.0.2.66")


def test_failures_age_out_of_the_window_and_success_resets_the_name():
    clock = FakeClock()
    lim = LoginLimiter(failures=3, window=60, clock=clock)
    lim.failed("d0", "a", known=True)
    lim.failed("d0", "a", known=True)
    clock.t += 61
    lim.failed("d0", "a", known=True)
    assert not lim.blocked("d0", "a")  # the first two were more than a window ago
    lim.failed("d0", "a", known=True)
    lim.succeeded("d0")
    lim.failed("d0", "a", known=True)
    assert not lim.blocked("d0", "a")
