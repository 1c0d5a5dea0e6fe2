"""The health authority's tracing tool (outside the kiosk firmware; ``kiosk trace``).

Keys (:mod:`.keys`), the fleet registry it addresses (:mod:`.registry`), signed
requests (:mod:`.requests`), verifying and opening answers (:mod:`.collect`), the
answer store they are kept in as they arrive (:mod:`.store`), one request with the
rounds it led to (:mod:`.investigation`, :mod:`.rounds`), the broker session
(:mod:`.session`) and the F1 list (:mod:`.f1`). The firmware never imports this package.
"""
