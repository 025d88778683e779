"""The vmdesc JSON trailer of a migration stream, and device state decoded through it.

Three jobs, all modelled on QEMU behaviour (no QEMU code is reproduced):

* **Reading** the vmdesc text with duplicate keys kept (``JsonObject``): nested savers
  (tmp, qtailq, qlist, gtree) write their child's ``vmsd_name``/``version``/``fields``
  keys once per element into one object (migration/vmstate.c vmstate_save_state_v,
  vmstate-types.c put_qtailq/put_gtree), and re-encoding must repeat them.
* **Writing** it byte-exact with QEMU's JSONWriter (qobject/json-writer.c) for each era:
  QEMU 7.2 builds ``{"page_size", "devices"}`` at completion time
  (migration/savevm.c qemu_savevm_state_complete_precopy_non_iterable); QEMU 8.x+ starts
  the JSON in the header and puts ``"configuration"`` first (qemu_savevm_state_header).
  Writers older than QEMU 5.2 (migration/qjson.c) are the ``qjson`` style.
* **Decoding** a section body using its vmdesc entry, the way
  scripts/analyze-migration.py does (each field reads exactly ``size`` bytes; compressed
  ``array_len`` entries expand into ``index`` 0..n-1; listed subsections must follow in
  order), into a model (``Body``/``Field``) that re-encodes to the same bytes, plus the
  exact ``analyze-migration.py -d state`` rendering of that model.

One module per concern; this package re-exports the public names (``from
conformance.migration.vmdesc import Body, Decoder, FormatError, Vmdesc, ...``):

=================  ===================================================================
``jsontext``       JSON text with duplicate keys kept; JSONWriter / qjson output
``model``          ``Vmdesc``: eras, ``parse_vmdesc`` (schema, limits), ``build_vmdesc``
``fields``         decoded state (``Body``, ``Field``, ``Subsection``, ``GTree``), wire
                   constants and array codecs
``decoder``        ``Decoder``: section bodies decoded through their vmdesc entry
``encoder``        decoded state back to bytes; ``locate_in_body``
``render``         ``analyze-migration.py -d state`` output, our JSON, raw-field notes
=================  ===================================================================

``FormatError`` is conformance.errors.FormatError.
"""

from conformance.errors import FormatError
from conformance.migration.vmdesc.decoder import Decoder
from conformance.migration.vmdesc.encoder import (
    body_bytes,
    encode_body,
    encode_field,
    field_bytes,
    locate_in_body,
)
from conformance.migration.vmdesc.fields import QEMU_VM_SUBSECTION, Body, Field, GTree, Subsection
from conformance.migration.vmdesc.jsontext import JsonObject, loads, write_json
from conformance.migration.vmdesc.model import ERA_72, ERA_2024, Vmdesc, build_vmdesc, parse_vmdesc
from conformance.migration.vmdesc.render import (
    analyze_body,
    analyze_field,
    raw_notes,
    state_body,
    state_field,
)

__all__ = ["ERA_2024", "ERA_72", "QEMU_VM_SUBSECTION", "Body", "Decoder", "Field", "FormatError",
           "GTree", "JsonObject", "Subsection", "Vmdesc", "analyze_body", "analyze_field",
           "body_bytes", "build_vmdesc", "encode_body", "encode_field", "field_bytes",
           "loads", "locate_in_body", "parse_vmdesc", "raw_notes", "state_body",
           "state_field", "write_json"]
