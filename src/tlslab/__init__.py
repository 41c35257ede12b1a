"""tlslab: a TLS 1.3 handshake engine and workbench (see DESIGN.md in ../shared).

The public API (names kept stable)::

    import tlslab
    client = tlslab.ClientConnection(tlslab.ClientConfig(server_name="example.com"))
    sock = tlslab.connect("example.com", 443)          # blocking
    stream = await tlslab.aio.connect("example.com")   # asyncio
"""
import sys as _sys

__version__ = "0.1.0"

from .proto.client import ClientConnection
from .proto.config import ClientConfig, ServerConfig
from .proto.events import (AlertReceived, ApplicationData, ConnectionClosed, Event,
                           HandshakeComplete, NewSessionTicket)
from .proto.provider import Provider
from .proto.server import ServerConnection
from .io.blocking import HandshakeError, TLSSocket, connect, serve
from .io import aio

# ``import tlslab.aio`` works too, not only ``tlslab.aio`` as an attribute
_sys.modules.setdefault(__name__ + ".aio", aio)

__all__ = [
    "__version__", "ClientConnection", "ServerConnection", "ClientConfig", "ServerConfig",
    "Provider", "Event", "HandshakeComplete", "ApplicationData", "AlertReceived",
    "ConnectionClosed", "NewSessionTicket", "connect", "serve", "TLSSocket",
    "HandshakeError", "aio",
]
