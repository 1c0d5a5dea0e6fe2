"""Tools of issuers and of the trust authority, outside the firmware.

Nothing under ``kiosk/`` that ``kiosk run`` imports may import this package
(tests/test_import_graph.py proves it): a kiosk verifies codes and trust
bundles, it never makes them. Here live the issuer keys (:mod:`.keys`), test and
demo DCCs (:mod:`.dcc`), health declarations (:mod:`.declaration`), COSE signing
(:mod:`.cose`) and the trust authority's bundle tools (:mod:`.bundle`).
"""
