"""Migration parameters: a model of QEMU's migrate-set-parameters and the race the review
of Fabiano Rosas's "qapi: Use visitors for migration parameters handling" (v2) found.

Modules: ``schema`` (members, types, defaults, capabilities, the runtime whitelist),
``heap`` (the allocation ledger), ``validate`` (migrate_params_check, migrate_caps_check),
``impls`` (the designs of set-parameters), ``race`` (two threads, a scheduler),
``request`` (QMP-like JSON input), ``strategies``/``properties`` (Hypothesis),
``configrecord`` (capabilities of a stream's configuration record).  The ``params``
command is conformance/cli/params.py (also ``python -m conformance.params``).

This package imports nothing from the rest of ``conformance`` except
``conformance.migration.migfile`` in ``configrecord`` (marked there).
"""
