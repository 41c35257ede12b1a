"""Capture files: pcap and pcapng, read one packet at a time through dpkt.

The file formats (libpcap's pcap, and pcapng, draft-ietf-opsawg-pcapng) are read by
`dpkt <https://github.com/kbandla/dpkt>`_ (BSD-3-Clause): its ``pcap.Reader`` for pcap
(micro- and nanosecond, both byte orders) and its pcapng block classes for pcapng.  We
only pick the reader by the file's magic number and, for pcapng, walk the blocks
ourselves with dpkt's block parsers so that a file with several interfaces (Wireshark
capturing on two NICs) keeps each packet's own link type: dpkt's ``pcapng.Reader``
applies the first interface's link type to every packet.

Nothing is loaded whole: :meth:`CaptureFile.packets` reads the next packet when asked.
A file that ends in the middle of a packet (a capture cut short, a copy still being
written) yields the packets before it and says so in :attr:`CaptureFile.problems`.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator, NamedTuple

#: libpcap magic numbers (both byte orders; micro- and nanosecond; Kuznetzov's "modified")
PCAP_MAGICS = {bytes.fromhex(m) for m in ("a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1",
                                           "a1b2cd34", "34cdb2a1")}
#: pcapng Section Header Block type (the same in both byte orders)
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")

_PCAPNG_IDB, _PCAPNG_PB, _PCAPNG_SHB, _PCAPNG_EPB = 1, 2, 0x0A0D0D0A, 6
#: a pcapng block larger than this is corrupt, not a packet (snap lengths are <= 256 KiB)
_MAX_BLOCK = 16 << 20


class CaptureError(Exception):
    """The file cannot be read as a capture at all (missing, unreadable, not pcap/pcapng).

    The message is one line, meant for the user."""


class Packet(NamedTuple):
    """One captured packet: ``index`` counts from 1 as Wireshark's frame numbers do.  (A
    named tuple: one is made per packet, and tuples are the cheapest objects to make.)"""

    index: int
    time: float
    linktype: int
    data: bytes


def sniff_format(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or None, from the first 4 bytes of a file."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


class _ReadWatch:
    """Wraps the file so that a short read (the file ends inside a header or a packet) is
    noticed: dpkt's pcap reader returns a short last packet without saying so."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.short = False
        self.name = getattr(f, "name", "")

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if n is not None and n > 0 and 0 < len(data) < n:
            self.short = True
        return data

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self) -> int:
        return self._f.tell()

    def fileno(self) -> int:
        return self._f.fileno()


class CaptureFile:
    """An open pcap or pcapng file.

    >>> with CaptureFile.open("trace.pcapng") as cap:   # doctest: +SKIP
    ...     for packet in cap.packets():
    ...         ...
    ...     cap.problems   # what could not be read, in words
    """

    def __init__(self, path: str | os.PathLike, fileobj: BinaryIO, fmt: str) -> None:
        self.path = os.fspath(path)
        self.format = fmt
        self._raw = fileobj
        self._f = _ReadWatch(fileobj)
        #: one line per thing that could not be read (truncation, corrupt blocks)
        self.problems: list[str] = []
        self.packets_read = 0

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "CaptureFile":
        """Open ``path``; :class:`CaptureError` if it is missing or not a capture."""
        name = os.fspath(path)
        try:
            f = open(name, "rb")
        except FileNotFoundError:
            raise CaptureError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise CaptureError(f"{name}: is a directory") from None
        except OSError as e:
            raise CaptureError(f"{name}: cannot read: {e.strerror or e}") from None
        try:
            head = f.read(4)
            fmt = sniff_format(head)
            if fmt is None:
                raise CaptureError(
                    f"{name}: not a pcap or pcapng capture ("
                    + (f"it starts with {head.hex(' ')}" if head else "the file is empty")
                    + "; pcap starts with a1 b2 c3 d4 or d4 c3 b2 a1, pcapng with 0a 0d 0d 0a)")
            f.seek(0)
        except CaptureError:
            f.close()
            raise
        except OSError as e:
            f.close()
            raise CaptureError(f"{name}: cannot read: {e.strerror or e}") from None
        return cls(name, f, fmt)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "CaptureFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- packets ---------------------------------------------------------------------
    def packets(self) -> Iterator[Packet]:
        """Every packet in file order; stops (with a line in :attr:`problems`) at the first
        damage, since nothing after a broken length can be trusted."""
        reader = self._pcap_packets if self.format == "pcap" else self._pcapng_packets
        try:
            for time, linktype, data in reader():
                self.packets_read += 1
                yield Packet(self.packets_read, time, linktype, data)
        except _Damaged as e:
            self.problems.append(str(e))
            return
        if self._f.short:
            self.problems.append(
                f"the file ends in the middle of a packet after packet {self.packets_read} "
                "(truncated capture): the last packet is incomplete")

    def _damaged(self, what: str) -> "_Damaged":
        return _Damaged(f"{what} after packet {self.packets_read}; "
                        f"the {self.packets_read} packets before it were read")

    def _pcap_packets(self) -> Iterator[tuple[float, int, bytes]]:
        import dpkt
        try:
            reader = dpkt.pcap.Reader(self._f)
        except (ValueError, dpkt.dpkt.Error, struct.error) as e:
            raise CaptureError(f"{self.path}: not a readable pcap file ({_reason(e)})") from None
        # upper bits of the link type field carry FCS information (pcap-linktype)
        linktype = reader.datalink() & 0x0FFFFFFF
        it = iter(reader)
        while True:
            try:
                ts, data = next(it)
            except StopIteration:
                return
            except (dpkt.dpkt.Error, struct.error, ValueError):
                self._f.short = False  # reported here, more precisely
                raise self._damaged("the file ends inside a packet header (truncated capture)")
            yield float(ts), linktype, bytes(data)

    def _pcapng_packets(self) -> Iterator[tuple[float, int, bytes]]:
        import dpkt
        from dpkt import pcapng
        f = self._f
        try:
            first = pcapng.Reader(f)  # checks the Section Header Block, finds the first IDB
        except (ValueError, dpkt.dpkt.Error, struct.error) as e:
            raise CaptureError(f"{self.path}: not a readable pcapng file ({_reason(e)})") from None
        little = isinstance(first.idb, pcapng.InterfaceDescriptionBlockLE)
        order = "<" if little else ">"
        epb_cls = pcapng.EnhancedPacketBlockLE if little else pcapng.EnhancedPacketBlock
        pb_cls = pcapng.PacketBlockLE if little else pcapng.PacketBlock
        idb_cls = pcapng.InterfaceDescriptionBlockLE if little else pcapng.InterfaceDescriptionBlock
        interfaces = [_interface(first.idb, order)]
        while True:
            head = f.read(8)
            if len(head) < 8:
                if head:
                    raise self._damaged("the file ends inside a block header (truncated capture)")
                return
            block_type, block_len = struct.unpack(order + "II", head)
            if block_type == _PCAPNG_SHB:
                # a new section: interfaces are numbered afresh (pcapng §4.1)
                rest = f.read(4)
                if rest not in (b"\x1a\x2b\x3c\x4d", b"\x4d\x3c\x2b\x1a"):
                    raise self._damaged("a second section header with an unknown byte order")
                if (rest == b"\x4d\x3c\x2b\x1a") != little:
                    raise self._damaged("a second section in the other byte order (not supported)")
                if block_len < 12 or block_len > _MAX_BLOCK:
                    raise self._damaged(f"a corrupt section header (length {block_len})")
                if len(f.read(block_len - 12)) < block_len - 12:
                    raise self._damaged("the file ends inside a section header (truncated capture)")
                interfaces = []
                continue
            if block_len < 12 or block_len > _MAX_BLOCK or block_len % 4:
                raise self._damaged(f"a corrupt pcapng block (type {block_type}, length {block_len})")
            body = f.read(block_len - 8)
            if len(body) < block_len - 8:
                f.short = False
                raise self._damaged("the file ends inside a block (truncated capture)")
            buf = head + body
            try:
                if block_type == _PCAPNG_IDB:
                    interfaces.append(_interface(idb_cls(buf), order))
                elif block_type in (_PCAPNG_EPB, _PCAPNG_PB):
                    blk = (epb_cls if block_type == _PCAPNG_EPB else pb_cls)(buf)
                    iface = blk.iface_id
                    if iface >= len(interfaces):
                        raise self._damaged(f"a packet on interface {iface}, which was never described")
                    linktype, divisor, offset = interfaces[iface]
                    ts = offset + ((blk.ts_high << 32) | blk.ts_low) / divisor
                    yield ts, linktype, bytes(blk.pkt_data)
                # other blocks (statistics, name resolution, custom, simple packet) are skipped
            except (dpkt.dpkt.Error, struct.error, ValueError) as e:
                raise self._damaged(f"a corrupt pcapng block (type {block_type}: {_reason(e)})")


class _Damaged(Exception):
    pass


def _interface(idb, order: str) -> tuple[int, float, int]:
    """(link type, timestamp divisor, timestamp offset) of an Interface Description Block
    (pcapng §4.2 if_tsresol / if_tsoffset)."""
    from dpkt import pcapng
    divisor, offset = 1e6, 0
    for opt in getattr(idb, "opts", ()):
        if opt.code == pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
            v = opt.data[0]
            divisor = float((2 if v & 0x80 else 10) ** (v & 0x7F))
        elif opt.code == pcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) == 8:
            offset = struct.unpack(order + "q", opt.data)[0]
    return idb.linktype, divisor, offset


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or "corrupt header"
