"""Python client for Cablehub's gRPC server API.

    from cablehub import Client

    with Client("127.0.0.1:8080", secret="app-secret") as client:
        client.publish("chat", '{"text": "hi"}')
        for pub in client.watch("chat"):
            print(pub.offset, pub.data)

cablehub.aio has the same client for asyncio. The generated messages and
stubs are in cablehub.v1 (cable_pb2, cable_pb2_grpc), written by
`make generate`.
"""

from cablehub._core import DEFAULT_TIMEOUT, api_token
from cablehub._version import __version__
from cablehub.client import Client, Watch
from cablehub.errors import (
    AuthError,
    CablehubError,
    CablehubTimeoutError,
    ClosedError,
    InvalidArgumentError,
    PositionError,
    UnavailableError,
)
from cablehub.results import (
    History,
    HistoryPublication,
    Info,
    NodeInfo,
    Presence,
    PresenceRecord,
    PresenceStats,
    StreamInfo,
    StreamPublication,
    Streams,
    value_to_python,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AuthError",
    "CablehubError",
    "CablehubTimeoutError",
    "Client",
    "ClosedError",
    "History",
    "HistoryPublication",
    "Info",
    "InvalidArgumentError",
    "NodeInfo",
    "PositionError",
    "Presence",
    "PresenceRecord",
    "PresenceStats",
    "StreamInfo",
    "StreamPublication",
    "Streams",
    "UnavailableError",
    "Watch",
    "__version__",
    "api_token",
    "value_to_python",
]
