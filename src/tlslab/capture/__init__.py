"""Captures: pcap/pcapng files (read through dpkt), TCP reassembly (ours), and the
ClientHellos in them (found with the engine's codec).

DESIGN.md "Packages": capture/ sits above proto/ and profiles/; ``tlslab fingerprint``
and (later) ``tlslab decode`` read captures through it.

    from tlslab.capture import read_connections, open_capture
    for conn in read_connections("trace.pcapng"):
        print(conn.index, conn.client, conn.server, len(conn.client_bytes), conn.gaps)

    with open_capture("trace.pcap") as cap:   # to read cap.problems / cap.stats afterwards
        conns = list(cap.connections())
    cap.problems                              # e.g. the file is truncated

The reassembly rules (overlaps: first data wins; limits and what they drop) are in
:mod:`tlslab.capture.tcp`.
"""
from .files import CaptureError, CaptureFile, Packet
from .hellos import (FoundHello, HelloFile, HelloScan, NotAClientHello, hellos_in_connection,
                     hellos_in_file, scan_client_hellos)
from .tcp import (Capture, Connection, Delivery, Endpoint, Gap, Limits, open_capture,
                  read_connections)

__all__ = ["Capture", "CaptureError", "CaptureFile", "Connection", "Delivery", "Endpoint",
           "FoundHello", "Gap", "HelloFile", "HelloScan", "Limits", "NotAClientHello", "Packet",
           "hellos_in_connection", "hellos_in_file", "open_capture", "read_connections",
           "scan_client_hellos"]
