"""First-class fakes and sample data, for the tests, the benchmarks, ``kiosk demo`` and ``kiosk simulate`` alike.

* :mod:`kiosk.testing.clock`: a clock that moves only when told (no test sleeps to wait);
* :mod:`kiosk.testing.signals`: a player for the signal patterns that moves on that clock;
* :mod:`kiosk.testing.doubles`: recording stand-ins for the door's seams (the systemd notifier, a camera);
* :mod:`kiosk.testing.visitors`: the demo's sample visitors, with the verdict each must get;
* :mod:`kiosk.testing.screenframes`: photographed-phone-screen frames for the decoder benchmarks;
* :mod:`kiosk.testing.city`: the simulated city, venues over real districts and wards whose kiosks sign
  like real ones (``kiosk simulate``), and past days' figures for a store;
* :mod:`kiosk.testing.campaign`: a simulated inspection campaign's visits (``kiosk simulate --campaign``).

Never imported by the door (``kiosk run``) nor by the centre.
"""
