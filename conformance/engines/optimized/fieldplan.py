"""A field's plan: what the generated code needs to know about one field under one
variant (its codec's inline shape, array / struct / pointer kind, the variant's policy
answers), computed once per (description, variant) by plan.Plan."""

from __future__ import annotations

from conformance.engines.codecs import codec_for
from conformance.model.description import Description, Field
from conformance.model.flags import F
from conformance.model.infos import lookup


class FieldPlan:
    __slots__ = ("field", "name", "member", "flags", "info", "codec", "inline", "code",
                 "width", "is_array", "is_struct", "is_pointer", "aop", "auto", "allocates",
                 "vmsd", "key_vmsd", "sub_version", "static_elem_size")

    def __init__(self, field: Field, owner: Description, v) -> None:
        flags = field.flags
        if not v.n_elems_multiplied(field):
            flags &= ~F.MULTIPLY_ELEMENTS  # master's vmstate_n_elems() ignores it
        self.field = field
        self.name = field.name
        self.member = field.member
        self.flags = flags
        try:
            self.info = lookup(field.info) if field.info is not None else None
        except KeyError:
            self.info = None  # an unknown info fails where the core would use it
        self.codec = codec_for(self.info) if self.info is not None else None
        # what the generated code may inline comes from the codec table; the fused struct
        # runs are big-endian, so a codec with another byte order is left to put/get
        self.inline = self.code = None
        self.width = 0
        if self.codec is not None and self.codec.inline is not None:
            fmt = self.codec.fmt
            if fmt is None:
                self.inline = self.codec.inline
            elif fmt[0] == ">" and len(fmt) == 2:
                self.inline, self.code = self.codec.inline, fmt[1]
                self.width = self.codec.packer.size
        self.is_array = field.is_array
        self.is_struct = bool(flags & (F.STRUCT | F.VSTRUCT))
        self.is_pointer = bool(flags & F.POINTER)
        self.aop = bool(flags & F.ARRAY_OF_POINTER)
        self.auto = v.is_auto(field)
        self.allocates = v.allocates_array(field)
        self.vmsd = field.vmsd
        self.key_vmsd = field.key_vmsd
        # STRUCT loads/saves with the sub-VMSD's own version, VSTRUCT with the field's
        if flags & F.STRUCT:
            self.sub_version = field.vmsd.version_id if field.vmsd is not None else 0
        else:
            self.sub_version = field.struct_version_id
        self.static_elem_size = (v.element_size(field, field.size)
                                 if not flags & F.VBUFFER else None)
