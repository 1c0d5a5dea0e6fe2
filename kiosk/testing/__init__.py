"""First-class fakes and sample data, for the tests, the benchmarks and ``kiosk demo`` alike.

* :mod:`kiosk.testing.clock`: a clock that moves only when told (no test sleeps to wait);
* :mod:`kiosk.testing.signals`: a player for the signal patterns that moves on that clock;
* :mod:`kiosk.testing.doubles`: recording stand-ins for the door's seams (the systemd notifier, a camera);
* :mod:`kiosk.testing.visitors`: the demo's sample visitors, with the verdict each must get;
* :mod:`kiosk.testing.screenframes`: photographed-phone-screen frames for the decoder benchmarks.

Never imported by the door (``kiosk run``).
"""
