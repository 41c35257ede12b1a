"""``tlslab scan``: everything a server accepts, found with tlslab's own probes.

Layers, bottom up (DESIGN.md "Packages": scan/):

* :mod:`.target`   what to scan (host, port, SNI, STARTTLS, trust) and the target syntax;
* :mod:`.wire`     one TCP connection (after an optional STARTTLS dialogue, :mod:`.starttls`)
                   that sends bytes and reads the server's first flight;
* :mod:`.hello`    ClientHellos built with the engine's codec from *any* code points (the
                   whole IANA registries, :mod:`.registry`), and the server's first answer
                   parsed with the engine's codec: only that answer is needed to learn
                   what the server accepts;
* :mod:`.enumerate` versions, cipher suites and their order, groups, signature schemes;
* :mod:`.handshake` full handshakes with the engine, for :mod:`.features` (resumption,
  0-RTT, ALPN, renegotiation, fallback, TLS 1.2 extensions) and :mod:`.certs` (chains);
* :mod:`.weaknesses` (decided by the answers) and :mod:`.vulns_active` / :mod:`.active`
  (Heartbleed, CCS injection, ROBOT, Ticketbleed, with crafted messages);
* :mod:`.findings` (severity, evidence, who it hurts, fixes per stack from ``fixes/``),
  :mod:`.simulation` (every client profile judged from the document) and :mod:`.mozilla`;
* :func:`.run.scan` (one server) and :func:`.run.scan_target` (the same as a plain function
  of JSON, for fleets), paced by :mod:`.pacing`;
* fleets: :mod:`.targets_file`, :mod:`.fleet` and :mod:`.cluster` on Dask, :mod:`.db`
  (SQLite) and :mod:`.diff`.
"""
