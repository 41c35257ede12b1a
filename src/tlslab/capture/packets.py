"""From a captured frame to a TCP segment: link layer, IPv4/IPv6, TCP headers.

Link types (https://www.tcpdump.org/linktypes.html): Ethernet (1, with 802.1Q/802.1ad
VLAN tags), Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, and the
platform-specific DLT_RAW values 12 and 14), LINKTYPE_IPV4 / IPV6 (228, 229), and BSD
loopback (NULL 0, LOOP 108).  IPv4 (RFC 791) and IPv6 (RFC 8200, with its extension
headers) carry TCP (RFC 9293 §3.1).

What is not done, on purpose:
- IP fragments are not reassembled (TCP endpoints avoid fragmentation with path MTU
  discovery; a fragmented segment is counted and its bytes become a gap in the stream);
- checksums are not verified: captures taken on the sending host hold segments whose
  checksum the NIC fills in later (checksum offload), so a check would reject good data;
- an IPv4 total length of 0 (TCP segmentation offload on the capturing host) is read as
  "up to the end of the frame", as Wireshark does.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

ETHERNET, NULL, LOOP, RAW, LINUX_SLL, IPV4, IPV6, LINUX_SLL2 = 1, 0, 108, 101, 113, 228, 229, 276
#: DLT_RAW as written by some BSDs (12 on most, 14 on OpenBSD)
RAW_ALIASES = (12, 14)
LINKTYPE_NAMES = {ETHERNET: "Ethernet", NULL: "BSD loopback", LOOP: "OpenBSD loopback",
                  RAW: "raw IP", 12: "raw IP", 14: "raw IP", LINUX_SLL: "Linux cooked (SLL)",
                  IPV4: "raw IPv4", IPV6: "raw IPv6", LINUX_SLL2: "Linux cooked (SLL2)"}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
#: address families of the loopback header (AF_INET6 is 24, 28 or 30 depending on the OS)
_AF_INET, _AF_INET6 = (2,), (10, 24, 28, 30)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

#: IPv6 extension headers that may precede TCP (RFC 8200 §4; AH RFC 4302)
_V6_HOP, _V6_ROUTING, _V6_FRAGMENT, _V6_DSTOPTS, _V6_AH, _V6_NONE = 0, 43, 44, 60, 51, 59


class Segment(NamedTuple):
    """One TCP segment, addresses as packed bytes (4 or 16)."""

    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    #: the frame was cut before the end of the segment (snap length, truncated file):
    #: ``payload`` holds only the captured part of ``length`` bytes
    length: int


#: why a packet carries no TCP segment we can use (counted per reason in the stats)
NOT_IP, NOT_TCP, FRAGMENT, MALFORMED, UNSUPPORTED_LINK = (
    "not IP", "IP but not TCP", "IP fragment", "malformed or cut short", "unsupported link type")


def decode(linktype: int, frame: bytes) -> Segment | str:
    """The TCP segment in ``frame``, or the reason there is none (one of the constants)."""
    if linktype == ETHERNET:
        if len(frame) < 14:
            return MALFORMED
        ethertype = (frame[12] << 8) | frame[13]
        pos = 14
        while ethertype in _VLAN_TAGS:
            if len(frame) < pos + 4:
                return MALFORMED
            ethertype = (frame[pos + 2] << 8) | frame[pos + 3]
            pos += 4
        if ethertype == _ETH_IPV4:
            return _ipv4(frame, pos)
        if ethertype == _ETH_IPV6:
            return _ipv6(frame, pos)
        return NOT_IP
    if linktype == LINUX_SLL or linktype == LINUX_SLL2:
        size = 16 if linktype == LINUX_SLL else 20
        if len(frame) < size:
            return MALFORMED
        proto = (frame[14] << 8 | frame[15]) if linktype == LINUX_SLL else (frame[0] << 8 | frame[1])
        if proto == _ETH_IPV4:
            return _ipv4(frame, size)
        if proto == _ETH_IPV6:
            return _ipv6(frame, size)
        return NOT_IP
    if linktype == RAW or linktype in RAW_ALIASES or linktype == IPV4 or linktype == IPV6:
        if not frame:
            return MALFORMED
        version = frame[0] >> 4
        if version == 4:
            return _ipv4(frame, 0)
        if version == 6:
            return _ipv6(frame, 0)
        return NOT_IP
    if linktype == NULL or linktype == LOOP:
        if len(frame) < 4:
            return MALFORMED
        # NULL: the family in the capturing host's byte order; LOOP: network order
        fam = {int.from_bytes(frame[:4], "big"), int.from_bytes(frame[:4], "little")}
        if fam & set(_AF_INET):
            return _ipv4(frame, 4)
        if fam & set(_AF_INET6):
            return _ipv6(frame, 4)
        return NOT_IP
    return UNSUPPORTED_LINK


def _ipv4(frame: bytes, pos: int) -> Segment | str:
    """RFC 791 §3.1."""
    if len(frame) < pos + 20 or frame[pos] >> 4 != 4:
        return MALFORMED
    ihl = (frame[pos] & 0x0F) * 4
    total = (frame[pos + 2] << 8) | frame[pos + 3]
    if ihl < 20 or len(frame) < pos + ihl:
        return MALFORMED
    if total == 0:  # TSO: the length is filled in by the NIC after capture
        total = len(frame) - pos
    if total < ihl:
        return MALFORMED
    frag = (frame[pos + 6] << 8) | frame[pos + 7]
    if frag & 0x3FFF:  # more-fragments flag or a fragment offset
        return FRAGMENT
    if frame[pos + 9] != 6:
        return NOT_TCP
    return _tcp(frame[pos + 12:pos + 16], frame[pos + 16:pos + 20], frame, pos + ihl, pos + total)


def _ipv6(frame: bytes, pos: int) -> Segment | str:
    """RFC 8200 §3 and §4 (extension headers are walked to the TCP header)."""
    if len(frame) < pos + 40 or frame[pos] >> 4 != 6:
        return MALFORMED
    payload_len = (frame[pos + 4] << 8) | frame[pos + 5]
    nxt = frame[pos + 6]
    src, dst = frame[pos + 8:pos + 24], frame[pos + 24:pos + 40]
    end = pos + 40 + payload_len if payload_len else len(frame)  # 0: jumbogram (RFC 2675)
    p = pos + 40
    for _ in range(16):  # a bounded walk: no packet needs more extension headers
        if nxt == 6:
            return _tcp(src, dst, frame, p, end)
        if nxt in (_V6_HOP, _V6_ROUTING, _V6_DSTOPTS):
            if len(frame) < p + 2:
                return MALFORMED
            nxt, p = frame[p], p + (frame[p + 1] + 1) * 8
        elif nxt == _V6_FRAGMENT:
            if len(frame) < p + 8:
                return MALFORMED
            offset_flags = (frame[p + 2] << 8) | frame[p + 3]
            if offset_flags & 0xFFF9:  # an offset or the M flag: a real fragment
                return FRAGMENT
            nxt, p = frame[p], p + 8  # an atomic fragment (RFC 6946) is a whole packet
        elif nxt == _V6_AH:
            if len(frame) < p + 2:
                return MALFORMED
            nxt, p = frame[p], p + (frame[p + 1] + 2) * 4
        else:
            return NOT_TCP  # ESP, no next header, UDP, ICMPv6, ...
    return MALFORMED


_TCP_HEADER = struct.Struct("!HHIIBB")


def _tcp(src: bytes, dst: bytes, frame: bytes, pos: int, end: int) -> Segment | str:
    """RFC 9293 §3.1: ports, sequence and acknowledgment numbers, data offset, flags."""
    n = len(frame)
    if n < pos + 20 or end < pos + 20:
        return MALFORMED
    # one unpack for the fixed header: this runs once per packet of the capture
    sport, dport, seq, ack, off, flags = _TCP_HEADER.unpack_from(frame, pos)
    offset = (off >> 4) * 4
    if offset < 20 or end < pos + offset or n < pos + offset:
        return MALFORMED
    payload = frame[pos + offset:min(end, n)]
    return Segment(src, sport, dst, dport, seq, ack, flags, payload, end - pos - offset)


def address_text(packed: bytes) -> str:
    """``127.0.0.1`` or ``::1`` (RFC 5952 form)."""
    return str(ipaddress.ip_address(packed))
