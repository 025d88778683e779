"""The golden corpus: pinned streams, annotated views, verify, regen and divergences."""
