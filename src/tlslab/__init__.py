"""tlslab: a TLS 1.3 handshake engine and workbench (see DESIGN.md in ../shared)."""
__version__ = "0.1.0"
