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
* the checks above that (features, weaknesses, findings) and :func:`.run.scan`.
"""
