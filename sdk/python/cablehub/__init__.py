"""Python client for Cablehub's gRPC server API.

    from cablehub import Client

    with Client("127.0.0.1:8080", secret="app-secret") as client:
        client.publish("chat", '{"text": "hi"}')

The generated messages and stubs are in cablehub.v1 (cable_pb2,
cable_pb2_grpc), written by `make generate`.
"""

from cablehub.client import (
    DEFAULT_TIMEOUT,
    CablehubError,
    Client,
    Presence,
    PresenceRecord,
    api_token,
    value_to_python,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "CablehubError",
    "Client",
    "Presence",
    "PresenceRecord",
    "api_token",
    "value_to_python",
]
__version__ = "0.1.0"
