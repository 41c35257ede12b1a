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

``tlslab decode`` rebuilds every TLS connection as an engine trace, decrypted with an NSS
key log (:mod:`~tlslab.capture.keylog`, :mod:`~tlslab.capture.decrypt`,
:mod:`~tlslab.capture.tls`, :mod:`~tlslab.capture.decode`; JSON in
:mod:`~tlslab.capture.report`)::

    from tlslab.capture import CaptureDecoder, read_keylog
    for conn in CaptureDecoder("trace.pcap", read_keylog("keys.log")).connections():
        conn.trace, conn.messages, conn.application_data, conn.problems
"""
from .files import CaptureError, CaptureFile, Packet
from .hellos import (FoundHello, HelloFile, HelloScan, NotAClientHello, hellos_in_connection,
                     hellos_in_file, scan_client_hellos)
from .tcp import (Capture, Connection, Delivery, Endpoint, Gap, Limits, open_capture,
                  read_connections)
from .decode import CaptureDecoder, decode_connection
from .decoded import DecodedConnection
from .keylog import KeyLog, KeyLogError, read_keylog

__all__ = ["Capture", "CaptureDecoder", "CaptureError", "CaptureFile", "Connection",
           "DecodedConnection", "Delivery", "Endpoint", "KeyLog", "KeyLogError",
           "decode_connection", "read_keylog",
           "FoundHello", "Gap", "HelloFile", "HelloScan", "Limits", "NotAClientHello", "Packet",
           "hellos_in_connection", "hellos_in_file", "open_capture", "read_connections",
           "scan_client_hellos"]
