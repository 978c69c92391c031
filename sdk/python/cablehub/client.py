"""A thin client for Cablehub's gRPC server API (cablehub.v1.CableService)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Union

import grpc
from google.protobuf import struct_pb2

from cablehub.v1 import cable_pb2, cable_pb2_grpc

DEFAULT_TIMEOUT = 5.0


class CablehubError(Exception):
    """The one error every failed call raises.

    ``code`` is the gRPC status (a ``grpc.StatusCode``, for example
    ``UNAUTHENTICATED`` for a wrong secret, ``INVALID_ARGUMENT`` for an
    invalid publication, ``DEADLINE_EXCEEDED`` when the call's timeout
    passed, ``UNAVAILABLE`` when the server cannot be reached) and
    ``message`` the server's status message.
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PresenceRecord:
    """One presence id on a stream; ``info`` is what the client joined with,
    as plain Python values (None when it gave none)."""

    id: str
    info: Any


@dataclass(frozen=True)
class Presence:
    """Who is present on a stream: ``total`` unique ids and one record per
    id, sorted by id. ``truncated`` says ``records`` holds only the first
    ids, as many as fit in the server's 1 MiB answer."""

    total: int
    records: List[PresenceRecord]
    truncated: bool = False


def api_token(secret: str) -> str:
    """The API bearer token the server derives from its application secret:
    lowercase hex HMAC-SHA256 of "api-cable" keyed with the secret."""
    return hmac.new(secret.encode(), b"api-cable", hashlib.sha256).hexdigest()


def value_to_python(value: struct_pb2.Value) -> Any:
    """Converts a google.protobuf.Value to dict/list/str/float/bool/None.

    Numbers stay floats (a Value holds a double), so JSON 1 becomes 1.0.
    """
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {k: value_to_python(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [value_to_python(v) for v in value.list_value.values]
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or no kind set


def _publication(
    stream: str,
    data: str,
    exclude_socket: Optional[str] = None,
    transient: bool = False,
    broadcast_type: Optional[str] = None,
    idempotency_key: Optional[str] = None,
) -> cable_pb2.Publication:
    if not isinstance(data, str):
        raise TypeError(f"data must be a str (usually JSON text), not {type(data).__name__}")
    pub = cable_pb2.Publication(stream=stream, data=data, idempotency_key=idempotency_key or "")
    # Meta is sent only when an option is set: the server treats an absent
    # meta as all defaults, and the request stays minimal on the wire.
    if exclude_socket or transient or broadcast_type:
        pub.meta.CopyFrom(
            cable_pb2.PublicationMeta(
                exclude_socket=exclude_socket or "",
                transient=transient,
                broadcast_type=broadcast_type or "",
            )
        )
    return pub


class Client:
    """Calls a Cablehub node's gRPC API at ``address`` ("host:port").

    Authentication: ``api_secret`` is sent as the bearer token as is;
    otherwise ``secret`` (the server's --secret) is turned into the token
    the way the server does; with neither, calls carry no authorization.
    As on the server, ``api_secret`` wins when both are given. ``timeout``
    is each call's deadline in seconds.

    The channel is plaintext HTTP/2 (h2c) unless TLS is asked for, as a
    server with --ssl_cert needs: ``root_certificates`` (PEM bytes of the
    CA that signed the server's certificate; ``b""`` or ``True`` for the
    system's roots) or ``credentials`` (any ``grpc.ChannelCredentials``).
    Use the client as a context manager, or call close(), to release it.
    """

    def __init__(
        self,
        address: str,
        *,
        secret: Optional[str] = None,
        api_secret: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        root_certificates: Union[bytes, bool, None] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
    ):
        token = api_secret if api_secret else (api_token(secret) if secret else None)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        if credentials is None and root_certificates is not None and root_certificates is not False:
            roots = root_certificates if isinstance(root_certificates, bytes) and root_certificates else None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        if credentials is not None:
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = cable_pb2_grpc.CableServiceStub(self._channel)

    def publish(
        self,
        stream: str,
        data: str,
        exclude_socket: Optional[str] = None,
        transient: bool = False,
        broadcast_type: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> None:
        """Publishes ``data`` (usually JSON text) to ``stream``.

        ``exclude_socket`` is a session id (the welcome's "sid") that must not
        receive it; ``transient`` skips history; ``broadcast_type`` becomes
        the "type" of the message clients receive; ``idempotency_key`` makes
        a retry with the same stream and key a no-op on the server.
        """
        pub = _publication(stream, data, exclude_socket, transient, broadcast_type, idempotency_key)
        self._call(self._stub.Publish, cable_pb2.PublishRequest(publications=[pub]))

    def publish_batch(self, publications: Iterable[Mapping[str, Any]]) -> None:
        """Publishes several publications in one request, delivered in order.

        Each is a mapping with the keys of publish()'s arguments: "stream"
        and "data" required, "exclude_socket", "transient", "broadcast_type"
        and "idempotency_key" optional; another key is a TypeError. The
        server validates the batch as a whole: one invalid publication
        rejects all of them.
        """
        pubs = [_publication(**p) for p in publications]
        self._call(self._stub.Publish, cable_pb2.PublishRequest(publications=pubs))

    def presence(self, stream: str) -> Presence:
        """Reads the presence records of ``stream``."""
        resp = self._call(self._stub.GetPresence, cable_pb2.GetPresenceRequest(stream=stream))
        records = [
            PresenceRecord(id=r.id, info=value_to_python(r.info) if r.HasField("info") else None)
            for r in resp.records
        ]
        return Presence(total=resp.total, records=records, truncated=resp.truncated)

    def disconnect(self, identifier: str, reconnect: bool = False) -> None:
        """Closes every session whose connection identifiers (a JWT's "ext"
        claim) equal ``identifier``; clients are told whether to reconnect.
        Sessions close asynchronously after the call returns."""
        req = cable_pb2.DisconnectRequest(identifier=identifier, reconnect=reconnect)
        self._call(self._stub.Disconnect, req)

    def close(self) -> None:
        """Closes the channel; a call after it raises ValueError."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            # Errors raised by a unary call are also grpc.Call objects.
            raise CablehubError(err.code(), err.details() or "") from err
