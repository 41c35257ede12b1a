"""What ``tlslab serve`` negotiates for its HTTP page: the ALPN protocols it accepts.

The page (:mod:`tlslab.workbench.httppage`) is an HTTP/1.x response, so serve must
never select ``h2`` (a client that gets h2 speaks HTTP/2 frames and fails on our
HTTP/1.1 answer: curl reports an HTTP/2 framing error), and it should select
``http/1.1`` when a client offers it (RFC 7301 §3.2: the server picks one of the
client's protocols it speaks; a client offering only others gets no_application_protocol).
"""
from __future__ import annotations

__all__ = ["HTTP1_ALPN", "NOT_HTTP1", "serve_alpn"]

#: what the page speaks, best first (RFC 7301 §6 registry names; HTTP/1.0 clients get an
#: HTTP/1.1 response with ``Connection: close``, which RFC 9112 §2.6 allows)
HTTP1_ALPN = ["http/1.1", "http/1.0"]

#: ALPN names of HTTP versions the page cannot speak (RFC 7301 §6, RFC 9113 §3.1, RFC 9114 §3.1)
NOT_HTTP1 = frozenset({"h2", "h2c", "h3"})


def serve_alpn(given: list[str] | None) -> list[str]:
    """The ALPN list for serve's ServerConfig: :data:`HTTP1_ALPN` by default; an explicit
    ``--alpn`` list as given (to play a server with other protocols), except the HTTP
    versions the page cannot answer in (ValueError, for a one-line usage error)."""
    if not given:
        return list(HTTP1_ALPN)
    wrong = [p for p in given if p.lower() in NOT_HTTP1]
    if wrong:
        raise ValueError(f"--alpn {', '.join(wrong)}: serve answers with an HTTP/1.1 page, so it "
                         "cannot negotiate HTTP/2 or HTTP/3 (use http/1.1)")
    return list(given)
