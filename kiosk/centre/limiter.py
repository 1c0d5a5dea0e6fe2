"""The login limiter: slows password guessing and cannot be reset or gamed by a flood.

Two kinds of counter, each the failures since the first of a window:

* **per account name**: ``failures`` (5) failed logins in ``window`` (5 min) lock the name for
  ``lockout`` (5 min), whoever tries, from wherever. Names of real accounts are kept in a table of
  their own, bounded by the number of accounts and never evicted, so no flood of invented names can
  unlock one. Invented names get counters too (so a locked name does not tell whether it exists),
  in a bounded LRU (``max_names``) whose evictions protect nothing.
* **per client address**: ``address_failures`` (50, ten times the name's) in the window lock the
  address: one official's typos lock only that official's name, not the colleagues behind the
  same proxy or NAT, while one address cannot sweep names. Addresses live in a bounded LRU
  (``max_addresses``); a locked address evicted from it moves to a bounded table of locked ones
  until its lockout ends.

A correct password resets its name's counter (not its address's). A locked name or address is
refused without checking the password (429), so the lockout also bounds argon2 work.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class _Counter:
    """Failures since the first one of the current window (small: a flood makes many of these)."""

    __slots__ = ("first", "n", "until")

    def __init__(self):
        self.first, self.n, self.until = 0.0, 0, 0.0

    def fail(self, now: float, n: int, window: float, lockout: float) -> None:
        if now - self.first > window:
            self.first, self.n = now, 0
        self.n += 1
        if self.n >= n:
            self.until, self.n = now + lockout, 0

    def locked(self, now: float) -> bool:
        return self.until > now


class LoginLimiter:
    """See the module's docstring. ``name`` is an account name in its compared form (``account_key``)."""

    def __init__(self, failures: int = 5, window: float = 300.0, lockout: float | None = None,
                 address_failures: int | None = None, max_names: int = 10_000, max_addresses: int = 50_000,
                 clock=time.monotonic):
        self.failures, self.window, self.clock = failures, window, clock
        self.lockout = window if lockout is None else lockout
        self.address_failures = address_failures or 10 * failures
        self.max_names, self.max_addresses = max_names, max_addresses
        self._accounts: dict[str, _Counter] = {}
        self._names: OrderedDict[str, _Counter] = OrderedDict()
        self._addresses: OrderedDict[str, _Counter] = OrderedDict()
        self._locked_addresses: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked(self, name: str, address: str) -> bool:
        now = self.clock()
        with self._lock:
            c = self._accounts.get(name) or self._names.get(name)
            if c is not None and c.locked(now):
                return True
            if self._locked_addresses.get(address, 0.0) > now:
                return True
            a = self._addresses.get(address)
            return a is not None and a.locked(now)

    def failed(self, name: str, address: str, known: bool = True) -> None:
        """One failed login for ``name`` (``known``: a real account's name) from ``address``."""
        now = self.clock()
        with self._lock:
            if known:
                c = self._accounts.get(name)
                if c is None:
                    c = self._accounts[name] = _Counter()
            else:
                c = self._lru(self._names, name, self.failures, self.max_names, now, keep_locked=False)
            c.fail(now, self.failures, self.window, self.lockout)
            a = self._lru(self._addresses, address, self.address_failures, self.max_addresses, now, keep_locked=True)
            a.fail(now, self.address_failures, self.window, self.lockout)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._accounts.pop(name, None)

    def _lru(self, table: OrderedDict, key: str, n: int, cap: int, now: float, keep_locked: bool) -> _Counter:
        c = table.get(key)
        if c is not None:
            table.move_to_end(key)
            return c
        while len(table) >= cap:
            old_key, old = table.popitem(last=False)
            if keep_locked and old.locked(now):
                self._keep_locked(old_key, old.until, now)
        c = table[key] = _Counter()
        return c

    def _keep_locked(self, address: str, until: float, now: float) -> None:
        held = self._locked_addresses
        if len(held) >= self.max_addresses:
            for k in [k for k, u in held.items() if u <= now]:
                del held[k]
            if len(held) >= self.max_addresses:  # every one still locked: the one ending first goes
                del held[min(held, key=held.__getitem__)]
        held[address] = until

    def size(self) -> dict[str, int]:
        """How many counters are held (the flood test's bound)."""
        with self._lock:
            return {"accounts": len(self._accounts), "names": len(self._names), "addresses": len(self._addresses),
                    "locked_addresses": len(self._locked_addresses)}
