"""The names every layer shares, each defined here once (a leaf: it imports nothing, so
the CLI's parser can use it without importing the model).

* :data:`VARIANT_NAMES`: the variants (conformance.model.variants.VARIANTS holds one
  Variant per name; tests/test_cli_consistency.py checks the two agree);
* :data:`ENGINE_NAMES`: the campaign's engines; :data:`EXTRA_ENGINES`: engines run
  only when asked for by name; :data:`ENGINE_MODULES`: the registry
  ``conformance.engines.get`` finds every engine through (name -> module with
  ``save`` / ``load``);
* :data:`CASE_FORMAT`: the ``format`` id of a case file (golden/FORMAT.md).
"""

VARIANT_NAMES = ("qemu-7.2", "legacy", "auto-alloc", "alloc")

ENGINE_NAMES = ("reference", "optimized")
#: engines that run only when asked for by name (not in the campaign's default set)
EXTRA_ENGINES = ("qemu",)
#: engine name -> the module implementing it; the qemu engine lives with the rest of
#: QEMU-in-the-loop (conformance/qemu/), which sits above engines/: it is found by name
ENGINE_MODULES = {
    "reference": "conformance.engines.reference",
    "optimized": "conformance.engines.optimized",
    "qemu": "conformance.qemu.engine",
}

CASE_FORMAT = "vmstate-conformance/case/1"

__all__ = ["CASE_FORMAT", "ENGINE_MODULES", "ENGINE_NAMES", "EXTRA_ENGINES", "VARIANT_NAMES"]
