"""How long a variable-length string attribute is, read from the raw object header without reading it.

libhdf5 offers no call that gives a variable-length attribute's length without loading the whole value
(H5Aget_storage_size gives the 16-byte descriptor), so a hostile file with a 1 GiB root attribute made every
reader allocate gigabytes. The descriptor itself starts with the value's length in bytes; this module finds
it in the object header (HDF5 file format, "Data Object Headers" versions 1 and 2, "Attribute Message"
versions 1–3, continuation blocks followed). Anything it does not recognize gives ``None``: the caller then
falls back to reading the value through a short buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

ATTRIBUTE, CONTINUATION = 0x000C, 0x0010
VLEN_CLASS, VLEN_STRING = 9, 1
MAX_BLOCKS = 64  # continuation blocks followed at most (a cycle of them ends here)


def vlen_lengths(fh: BinaryIO, header_address: int, offset_size: int, length_size: int) -> dict[str, int] | None:
    """{attribute name: byte length} of the scalar variable-length string attributes stored in the
    object header at ``header_address``; None when the header is not one this module can read."""
    try:
        lengths: dict[str, int] = {}
        for body in _messages(fh, header_address, offset_size, length_size):
            parsed = _vlen_attribute(body)
            if parsed is not None:
                lengths[parsed[0]] = parsed[1]
        return lengths
    except (struct.error, ValueError, OSError, UnicodeDecodeError):
        return None


def _messages(fh: BinaryIO, address: int, offset_size: int, length_size: int) -> Iterator[bytes]:
    """The attribute messages' bodies of an object header, through its continuation blocks."""
    fh.seek(address)
    first = fh.read(16)
    if first[:4] == b"OHDR":
        start, size, flags = _v2_first_block(fh, address)
        blocks, version = [(start, size)], 2
    elif first[:1] == b"\x01":
        blocks, version, flags = [(address + 16, struct.unpack("<I", first[8:12])[0])], 1, 0
    else:
        raise ValueError("unknown object header version")
    for _ in range(MAX_BLOCKS):
        if not blocks:
            return
        start, size = blocks.pop()
        fh.seek(start)
        raw = fh.read(size)
        for kind, body in (_v1_messages(raw) if version == 1 else _v2_messages(raw, flags)):
            if kind == CONTINUATION:
                offset, length = struct.unpack(f"<{_int(offset_size)}{_int(length_size)}",
                                               body[:offset_size + length_size])
                blocks.append((offset + 4, length - 8) if version == 2 else (offset, length))  # "OCHK" … checksum
            elif kind == ATTRIBUTE:
                yield body


def _int(size: int) -> str:
    return {2: "H", 4: "I", 8: "Q"}[size]


def _v2_first_block(fh: BinaryIO, address: int) -> tuple[int, int, int]:
    """(start, length, header flags) of the messages of a version-2 header's first chunk."""
    fh.seek(address + 4)
    version, flags = fh.read(2)
    if version != 2:
        raise ValueError("unknown OHDR version")
    skip = (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    fh.read(skip)
    width = 1 << (flags & 0x03)
    size = int.from_bytes(fh.read(width), "little")
    return address + 6 + skip + width, size, flags


def _v1_messages(raw: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at + 8 <= len(raw):
        kind, size = struct.unpack("<HH", raw[at:at + 4])
        yield kind, raw[at + 8:at + 8 + size]
        at += 8 + size


def _v2_messages(raw: bytes, header_flags: int) -> Iterator[tuple[int, bytes]]:
    """Messages of a version-2 chunk (messages and gap; the checksum is not in ``raw``)."""
    order = 2 if header_flags & 0x04 else 0  # attribute creation order tracked: 2 more bytes a message
    at = 0
    while at + 4 + order <= len(raw):
        kind, size = raw[at], struct.unpack("<H", raw[at + 1:at + 3])[0]
        at += 4 + order
        yield kind, raw[at:at + size]
        at += size


def _vlen_attribute(body: bytes) -> tuple[str, int] | None:
    """(name, length) of an attribute message holding one variable-length string; None otherwise."""
    version = body[0]
    name_size, type_size, space_size = struct.unpack("<HHH", body[2:8])
    if version == 1:
        pad = lambda n: (n + 7) // 8 * 8  # noqa: E731 - version 1 pads each field to 8 bytes
        at = 8
    elif version in (2, 3):
        pad = lambda n: n  # noqa: E731
        at = 8 + (1 if version == 3 else 0)
        if body[1] & 0x03:  # a shared datatype or dataspace: not described here
            return None
    else:
        return None
    name = body[at:at + name_size].rstrip(b"\x00").decode("utf-8")
    datatype = body[at + pad(name_size):at + pad(name_size) + type_size]
    if datatype[0] & 0x0F != VLEN_CLASS or datatype[1] & 0x0F != VLEN_STRING:
        return None
    data = at + pad(name_size) + pad(type_size) + pad(space_size)
    return name, struct.unpack("<I", body[data:data + 4])[0]
