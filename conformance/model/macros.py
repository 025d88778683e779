"""Builders named after QEMU's VMSTATE_* macros (include/migration/vmstate.h).

They let a device's table be transcribed line by line::

    vmsd = Description("mydev", 2, 1, fields=[
        VMSTATE_UINT32("ctrl"),
        VMSTATE_UINT8_ARRAY("regs", 16),
        VMSTATE_UINT32_V("extra", 2),
        VMSTATE_VARRAY_UINT32("queue", "queue_len", "uint16"),
    ])

The C ``_state``/``_type`` arguments disappear (members are names; sizes come from the
info catalogue or the sub-description).  ``_TEST`` variants take a predicate, ``_V``
variants a version.  Pointer-array builders follow the convention of the era they
come from: the classic macros set ``size`` to the host pointer size (8), the QEMU 11
``*_ALLOC`` macros set ``size`` to the pointee size.
"""

from __future__ import annotations

from conformance.model.description import Description, Field, Predicate, nominal_size
from conformance.model.flags import F
from conformance.model.infos import lookup

HOST_POINTER_SIZE = 8


def _sz(info: str) -> int:
    return lookup(info).c_size


def _ssz(vmsd: Description) -> int:
    return nominal_size(vmsd)


# -- scalars --------------------------------------------------------------------------

def VMSTATE_SINGLE_TEST(name, info, test: Predicate | None = None, version=0, member=None):
    return Field(name, F.SINGLE, info, member or name, size=_sz(info), version_id=version,
                 field_exists=test)


def VMSTATE_SINGLE(name, info, version=0, member=None):
    return VMSTATE_SINGLE_TEST(name, info, None, version, member)


def _scalar(info):
    def plain(name, version=0, member=None):
        return VMSTATE_SINGLE(name, info, version, member)

    def versioned(name, version, member=None):
        return VMSTATE_SINGLE(name, info, version, member)

    def tested(name, test, member=None):
        return VMSTATE_SINGLE_TEST(name, info, test, 0, member)

    return plain, versioned, tested


VMSTATE_BOOL, VMSTATE_BOOL_V, VMSTATE_BOOL_TEST = _scalar("bool")
VMSTATE_INT8, VMSTATE_INT8_V, VMSTATE_INT8_TEST = _scalar("int8")
VMSTATE_INT16, VMSTATE_INT16_V, VMSTATE_INT16_TEST = _scalar("int16")
VMSTATE_INT32, VMSTATE_INT32_V, VMSTATE_INT32_TEST = _scalar("int32")
VMSTATE_INT64, VMSTATE_INT64_V, VMSTATE_INT64_TEST = _scalar("int64")
VMSTATE_UINT8, VMSTATE_UINT8_V, VMSTATE_UINT8_TEST = _scalar("uint8")
VMSTATE_UINT16, VMSTATE_UINT16_V, VMSTATE_UINT16_TEST = _scalar("uint16")
VMSTATE_UINT32, VMSTATE_UINT32_V, VMSTATE_UINT32_TEST = _scalar("uint32")
VMSTATE_UINT64, VMSTATE_UINT64_V, VMSTATE_UINT64_TEST = _scalar("uint64")
VMSTATE_INT32_EQUAL, _, _ = _scalar("int32 equal")
VMSTATE_UINT8_EQUAL, _, _ = _scalar("uint8 equal")
VMSTATE_UINT16_EQUAL, _, _ = _scalar("uint16 equal")
VMSTATE_UINT32_EQUAL, _, _ = _scalar("uint32 equal")
VMSTATE_UINT64_EQUAL, _, _ = _scalar("int64 equal")
VMSTATE_INT32_POSITIVE_LE, _, _ = _scalar("int32 le")
VMSTATE_TIMER, VMSTATE_TIMER_V, VMSTATE_TIMER_TEST = _scalar("timer")
VMSTATE_CPUDOUBLE, _, _ = _scalar("CPU_Double_U")
VMSTATE_GBYTEARRAY, _, _ = _scalar("GByteArray")


def VMSTATE_POINTER(name, info, version=0, member=None):
    """VMSTATE_POINTER / VMSTATE_TIMER_PTR: a single pointed-to value."""
    return Field(name, F.SINGLE | F.POINTER, info, member or name, size=_sz(info),
                 version_id=version)


def VMSTATE_TIMER_PTR(name, version=0):
    return VMSTATE_POINTER(name, "timer", version)


# -- fixed arrays ---------------------------------------------------------------------

def VMSTATE_ARRAY(name, num, info, version=0, test=None, member=None):
    return Field(name, F.ARRAY, info, member or name, size=_sz(info), num=num,
                 version_id=version, field_exists=test)


def _array(info):
    def plain(name, num, version=0, member=None):
        return VMSTATE_ARRAY(name, num, info, version, None, member)

    return plain


VMSTATE_BOOL_ARRAY = _array("bool")
VMSTATE_INT8_ARRAY = _array("int8")
VMSTATE_INT16_ARRAY = _array("int16")
VMSTATE_INT32_ARRAY = _array("int32")
VMSTATE_INT64_ARRAY = _array("int64")
VMSTATE_UINT8_ARRAY = _array("uint8")
VMSTATE_UINT16_ARRAY = _array("uint16")
VMSTATE_UINT32_ARRAY = _array("uint32")
VMSTATE_UINT64_ARRAY = _array("uint64")
VMSTATE_TIMER_ARRAY = _array("timer")
VMSTATE_CPUDOUBLE_ARRAY = _array("CPU_Double_U")


def VMSTATE_2DARRAY(name, n1, n2, info, version=0):
    return VMSTATE_ARRAY(name, n1 * n2, info, version)


def VMSTATE_SUB_ARRAY(name, start, num, info, version=0):
    """A slice of a member array; the model names the slice as its own member."""
    return Field(name, F.ARRAY, info, name, size=_sz(info), num=num, start=start,
                 version_id=version)


# -- variable arrays ------------------------------------------------------------------

def VMSTATE_VARRAY_INT32(name, num_member, info, version=0):
    return Field(name, F.VARRAY_INT32 | F.POINTER, info, name, size=_sz(info),
                 num_member=num_member, version_id=version)


def VMSTATE_VARRAY_UINT32(name, num_member, info, version=0):
    return Field(name, F.VARRAY_UINT32 | F.POINTER, info, name, size=_sz(info),
                 num_member=num_member, version_id=version)


def VMSTATE_VARRAY_UINT16_UNSAFE(name, num_member, info, version=0):
    return Field(name, F.VARRAY_UINT16, info, name, size=_sz(info), num_member=num_member,
                 version_id=version)


def VMSTATE_ARRAY_INT32_UNSAFE(name, num_member, info, version=0):
    return Field(name, F.VARRAY_INT32, info, name, size=_sz(info), num_member=num_member,
                 version_id=version)


def VMSTATE_VARRAY_UINT32_ALLOC(name, num_member, info, version=0):
    return Field(name, F.VARRAY_UINT32 | F.POINTER | F.ALLOC, info, name, size=_sz(info),
                 num_member=num_member, version_id=version)


def VMSTATE_VARRAY_UINT16_ALLOC(name, num_member, info, version=0):
    return Field(name, F.VARRAY_UINT16 | F.POINTER | F.ALLOC, info, name, size=_sz(info),
                 num_member=num_member, version_id=version)


def VMSTATE_VARRAY_MULTIPLY(name, num_member, multiply, info, version=0):
    """Era A/B only: count = counter * multiply (VMS_MULTIPLY_ELEMENTS)."""
    return Field(name, F.VARRAY_UINT32 | F.MULTIPLY_ELEMENTS, info, name, size=_sz(info),
                 num=multiply, num_member=num_member, version_id=version)


# -- structs --------------------------------------------------------------------------

def VMSTATE_STRUCT(name, vmsd, version=0, test=None, member=None):
    return Field(name, F.STRUCT, None, member or name, size=_ssz(vmsd), vmsd=vmsd,
                 version_id=version, field_exists=test)


def VMSTATE_STRUCT_TEST(name, test, vmsd, version=0):
    return VMSTATE_STRUCT(name, vmsd, version, test)


def VMSTATE_VSTRUCT(name, vmsd, struct_version, version=0, test=None):
    return Field(name, F.VSTRUCT, None, name, size=_ssz(vmsd), vmsd=vmsd,
                 struct_version_id=struct_version, version_id=version, field_exists=test)


def VMSTATE_STRUCT_POINTER(name, vmsd, version=0):
    return Field(name, F.STRUCT | F.POINTER, None, name, size=_ssz(vmsd), vmsd=vmsd,
                 version_id=version)


def VMSTATE_STRUCT_ARRAY(name, num, vmsd, version=0, test=None):
    return Field(name, F.STRUCT | F.ARRAY, None, name, size=_ssz(vmsd), num=num, vmsd=vmsd,
                 version_id=version, field_exists=test)


def _struct_varray(kind, pointer=False, alloc=False):
    def build(name, num_member, vmsd, version=0):
        flags = F.STRUCT | kind
        if pointer:
            flags |= F.POINTER
        if alloc:
            flags |= F.ALLOC | F.POINTER
        return Field(name, flags, None, name, size=_ssz(vmsd), num_member=num_member,
                     vmsd=vmsd, version_id=version)

    return build


VMSTATE_STRUCT_VARRAY_UINT8 = _struct_varray(F.VARRAY_UINT8)
VMSTATE_STRUCT_VARRAY_INT32 = _struct_varray(F.VARRAY_INT32)
VMSTATE_STRUCT_VARRAY_UINT32 = _struct_varray(F.VARRAY_UINT32)
VMSTATE_STRUCT_VARRAY_POINTER_INT32 = _struct_varray(F.VARRAY_INT32, pointer=True)
VMSTATE_STRUCT_VARRAY_POINTER_UINT32 = _struct_varray(F.VARRAY_UINT32, pointer=True)
VMSTATE_STRUCT_VARRAY_POINTER_UINT16 = _struct_varray(F.VARRAY_UINT16, pointer=True)
VMSTATE_STRUCT_VARRAY_ALLOC = _struct_varray(F.VARRAY_INT32, alloc=True)


# -- arrays of pointers ---------------------------------------------------------------

def VMSTATE_ARRAY_OF_POINTER(name, num, info, version=0):
    """Classic macro: ``size`` = sizeof(pointer), the array stride (Era A/B)."""
    return Field(name, F.ARRAY | F.ARRAY_OF_POINTER, info, name, size=HOST_POINTER_SIZE,
                 num=num, version_id=version)


def VMSTATE_ARRAY_OF_POINTER_TO_STRUCT(name, num, vmsd, version=0):
    return Field(name, F.ARRAY | F.STRUCT | F.ARRAY_OF_POINTER, None, name,
                 size=HOST_POINTER_SIZE, num=num, vmsd=vmsd, version_id=version)


def VMSTATE_VARRAY_OF_POINTER_UINT32(name, num_member, info, version=0):
    return Field(name, F.VARRAY_UINT32 | F.ARRAY_OF_POINTER | F.POINTER, info, name,
                 size=HOST_POINTER_SIZE, num_member=num_member, version_id=version)


def _auto_alloc(kind):
    def build(name, num_member, vmsd, version=0):
        """QEMU 11: POINTER|VARRAY|ARRAY_OF_POINTER|STRUCT|AUTO_ALLOC, size = sizeof(type)."""
        return Field(name, F.POINTER | kind | F.ARRAY_OF_POINTER | F.STRUCT | F.AUTO_ALLOC,
                     None, name, size=_ssz(vmsd), num_member=num_member, vmsd=vmsd,
                     version_id=version)

    return build


VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT8_ALLOC = _auto_alloc(F.VARRAY_UINT8)
VMSTATE_VARRAY_OF_POINTER_TO_STRUCT_UINT32_ALLOC = _auto_alloc(F.VARRAY_UINT32)


# -- buffers --------------------------------------------------------------------------

def VMSTATE_BUFFER(name, size, version=0, test=None, member=None):
    return Field(name, F.BUFFER, "buffer", member or name, size=size, version_id=version,
                 field_exists=test)


def VMSTATE_PARTIAL_BUFFER(name, size):
    return VMSTATE_BUFFER(name, size)


def VMSTATE_BUFFER_TEST(name, size, test):
    return VMSTATE_BUFFER(name, size, 0, test)


def VMSTATE_BUFFER_POINTER_UNSAFE(name, size, version=0):
    return Field(name, F.BUFFER | F.POINTER, "buffer", name, size=size, version_id=version)


def VMSTATE_VBUFFER(name, size_member, version=0, test=None):
    return Field(name, F.VBUFFER | F.POINTER, "buffer", name, size_member=size_member,
                 version_id=version, field_exists=test)


VMSTATE_VBUFFER_UINT32 = VMSTATE_VBUFFER


def VMSTATE_VBUFFER_MULTIPLY(name, size_member, multiply, version=0):
    return Field(name, F.VBUFFER | F.POINTER | F.MULTIPLY, "buffer", name, size=multiply,
                 size_member=size_member, version_id=version)


def VMSTATE_VBUFFER_ALLOC_UINT32(name, size_member, version=0, test=None):
    return Field(name, F.VBUFFER | F.POINTER | F.ALLOC, "buffer", name,
                 size_member=size_member, version_id=version, field_exists=test)


def VMSTATE_BITMAP(name, size_member, version=0):
    """``size_member`` holds the number of bits."""
    return Field(name, F.VBUFFER | F.POINTER, "bitmap", name, size_member=size_member,
                 version_id=version)


def VMSTATE_UNUSED_V(version, size):
    return Field("unused", F.BUFFER, "unused_buffer", None, size=size, version_id=version)


def VMSTATE_UNUSED(size):
    return VMSTATE_UNUSED_V(0, size)


def VMSTATE_UNUSED_TEST(test, size):
    return Field("unused", F.BUFFER, "unused_buffer", None, size=size, field_exists=test)


def VMSTATE_UNUSED_VARRAY_UINT32(num_member, size, version=0):
    return Field("unused", F.VARRAY_UINT32 | F.BUFFER, "unused_buffer", None, size=size,
                 num_member=num_member, version_id=version)


def VMSTATE_VALIDATE(name, test):
    """ARRAY|MUST_EXIST with num 0: checks ``test``; writes and reads nothing."""
    return Field(name, F.ARRAY | F.MUST_EXIST, None, None, num=0, field_exists=test)


# -- nested savers --------------------------------------------------------------------

def VMSTATE_WITH_TMP(vmsd, size=None):
    """info tmp: runs ``vmsd`` on a temporary whose member ``parent`` is the opaque."""
    return Field("tmp", F(0), "tmp", None, size=size or _ssz(vmsd) + HOST_POINTER_SIZE,
                 vmsd=vmsd)


def VMSTATE_QTAILQ_V(name, version, vmsd, start=0):
    return Field(name, F(0), "qtailq", name, size=_ssz(vmsd), start=start, vmsd=vmsd,
                 version_id=version)


def VMSTATE_QLIST_V(name, version, vmsd, start=0):
    return Field(name, F(0), "qlist", name, size=_ssz(vmsd), start=start, vmsd=vmsd,
                 version_id=version)


def VMSTATE_GTREE_V(name, version, key_vmsd, val_vmsd):
    return Field(name, F(0), "gtree", name, size=_ssz(val_vmsd), start=_ssz(key_vmsd),
                 vmsd=val_vmsd, key_vmsd=key_vmsd, version_id=version)


def VMSTATE_GTREE_DIRECT_KEY_V(name, version, val_vmsd):
    return Field(name, F(0), "gtree", name, size=_ssz(val_vmsd), start=0, vmsd=val_vmsd,
                 version_id=version)


__all__ = [n for n in dir() if n.startswith("VMSTATE_")] + ["HOST_POINTER_SIZE"]
