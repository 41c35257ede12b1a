"""Writing TCP conversations as a pcap file (dpkt's writer and packet builders).

For tests and benchmarks: byte streams that a sans-IO engine pair produced in memory, or
connections copied from a real capture with other addresses, become a capture that
``tlslab decode`` and tshark read like one taken on a wire.

    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 443))
    conv.open()                       # SYN, SYN+ACK, ACK (RFC 9293 §3.5)
    conv.send("client", hello_bytes)  # cut into segments of at most ``mss`` bytes
    conv.send("server", answer)
    conv.close()                      # FIN each way
    write_pcap("out.pcap", [conv])    # or: with PcapWriter(path) as w: w.write(conv.packets)

Addresses may be IPv4 or IPv6; frames are Ethernet (link type 1).  Checksums are
computed by dpkt.  :meth:`Conversation.packets` are ``(time, frame)`` pairs; tests may
reorder, duplicate or drop them to make out-of-order, retransmitted or lost segments.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Iterable

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_SRC_MAC, _DST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


class Conversation:
    """One TCP connection's packets, built in order (see the module documentation)."""

    def __init__(self, client: tuple[str, int], server: tuple[str, int], *,
                 start: float = 1_700_000_000.0, step: float = 0.0001, mss: int = 1460,
                 client_isn: int = 1000, server_isn: int = 5000) -> None:
        self.client = (ipaddress.ip_address(client[0]).packed, client[1])
        self.server = (ipaddress.ip_address(server[0]).packed, server[1])
        self.time = start
        self.step = step
        self.mss = mss
        self.seq = {"client": client_isn, "server": server_isn}
        self.packets: list[tuple[float, bytes]] = []

    def _frame(self, direction: str, flags: int, payload: bytes = b"") -> bytes:
        import dpkt
        src, dst = (self.client, self.server) if direction == "client" else (self.server, self.client)
        other = "server" if direction == "client" else "client"
        tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=self.seq[direction] & 0xFFFFFFFF,
                           ack=self.seq[other] & 0xFFFFFFFF if flags & dpkt.tcp.TH_ACK else 0,
                           flags=flags, win=65535, data=payload)
        if len(src[0]) == 4:
            ip = dpkt.ip.IP(src=src[0], dst=dst[0], p=6, ttl=64, data=tcp)
            ip.len = 20 + len(bytes(tcp))
            kind = _ETH_IPV4
        else:
            ip = dpkt.ip6.IP6(src=src[0], dst=dst[0], nxt=6, hlim=64, data=tcp)
            ip.plen = len(bytes(tcp))
            kind = _ETH_IPV6
        return bytes(dpkt.ethernet.Ethernet(src=_SRC_MAC if direction == "client" else _DST_MAC,
                                            dst=_DST_MAC if direction == "client" else _SRC_MAC,
                                            type=kind, data=ip))

    def _add(self, direction: str, flags: int, payload: bytes = b"") -> None:
        self.packets.append((self.time, self._frame(direction, flags, payload)))
        self.time += self.step

    def open(self) -> "Conversation":
        """The three-way handshake (RFC 9293 §3.5)."""
        import dpkt
        t = dpkt.tcp
        self._add("client", t.TH_SYN)
        self.seq["client"] += 1
        self._add("server", t.TH_SYN | t.TH_ACK)
        self.seq["server"] += 1
        self._add("client", t.TH_ACK)
        return self

    def send(self, direction: str, data: bytes) -> "Conversation":
        """``data`` from ``direction`` ("client" / "server"), in segments of ``mss`` bytes."""
        import dpkt
        t = dpkt.tcp
        view = memoryview(data)
        for i in range(0, len(data), self.mss):
            chunk = bytes(view[i:i + self.mss])
            self._add(direction, t.TH_ACK | t.TH_PUSH, chunk)
            self.seq[direction] += len(chunk)
        return self

    def close(self) -> "Conversation":
        """FIN from the client, then from the server (each acknowledged)."""
        import dpkt
        t = dpkt.tcp
        for d in ("client", "server"):
            self._add(d, t.TH_FIN | t.TH_ACK)
            self.seq[d] += 1
        self._add("client", t.TH_ACK)
        return self


class PcapWriter:
    """A pcap file (microsecond timestamps, Ethernet) written packet by packet."""

    def __init__(self, path: str | os.PathLike, snaplen: int = 262144) -> None:
        import dpkt
        self._f = open(path, "wb")
        self._w = dpkt.pcap.Writer(self._f, snaplen=snaplen, linktype=dpkt.pcap.DLT_EN10MB)

    def write(self, packets: Iterable[tuple[float, bytes]]) -> None:
        for ts, frame in packets:
            self._w.writepkt(frame, ts=ts)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_pcap(path: str | os.PathLike, conversations: Iterable[Conversation] = (),
               packets: Iterable[tuple[float, bytes]] = ()) -> str:
    """Write the conversations' packets (sorted by time) and any extra ``packets``."""
    everything = [p for c in conversations for p in c.packets] + list(packets)
    everything.sort(key=lambda p: p[0])
    with PcapWriter(path) as w:
        w.write(everything)
    return os.fspath(path)
