"""Operations on kiosks, inside the package so they are tested in-process.

- :mod:`kiosk.ops.provision`: ``kiosk provision``, a fresh Raspberry Pi (or a directory tree) becomes a kiosk;
- :mod:`kiosk.ops.update`: ``kiosk update``, a new release venv, switched to atomically, rolled back when not ready;
  ``--request`` installs the release a signed update command names (:mod:`kiosk.ops.release_fetch`);
- :mod:`kiosk.ops.rollout`: ``kiosk update rollout``, a release to a canary share of the fleet, then the rest,
  watching the kiosks' signed info and health (:mod:`kiosk.ops.fleet_watch`);
- :mod:`kiosk.ops.fleet`: ``kiosk fleet``, a fleet file becomes every kiosk's first-boot files, device keys,
  the fleet registry and the broker's password file and ACL (:mod:`kiosk.ops.broker`).

These are tools for IT staff: ``kiosk run`` never imports them.
"""
