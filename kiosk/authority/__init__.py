"""The health authority's tracing tool (outside the kiosk firmware; ``kiosk trace``).

Keys (:mod:`.keys`), the fleet registry it addresses (:mod:`.registry`), signed
requests (:mod:`.requests`), collecting and merging answers (:mod:`.collect`)
and the F1 list (:mod:`.f1`). The firmware never imports this package.
"""
