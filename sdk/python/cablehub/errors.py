"""The exceptions of the Cablehub client.

Every failed call raises a ``CablehubError``, or one of its subclasses
chosen by the gRPC status code, so callers can catch what they handle:

    CablehubError            any failure: .code (grpc.StatusCode), .message
    ├── AuthError            UNAUTHENTICATED, PERMISSION_DENIED
    ├── UnavailableError     UNAVAILABLE
    ├── InvalidArgumentError INVALID_ARGUMENT
    ├── CablehubTimeoutError DEADLINE_EXCEEDED
    ├── PositionError        FAILED_PRECONDITION, with the stream's .epoch and .offset
    └── ClosedError          a call on a closed client (CANCELLED, no network)
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

import grpc

from cablehub.v1 import cable_pb2

__all__ = [
    "CablehubError",
    "AuthError",
    "UnavailableError",
    "InvalidArgumentError",
    "CablehubTimeoutError",
    "PositionError",
    "ClosedError",
    "error_from_rpc",
    "stream_position_from_details",
]

# The trailer where gRPC servers put a google.rpc.Status with details.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
_POSITION_TYPE = "cablehub.v1.StreamPosition"


class CablehubError(Exception):
    """A failed call: ``code`` is the gRPC status (a ``grpc.StatusCode``),
    ``code_name`` its name ("INVALID_ARGUMENT", ...) and ``message`` the
    server's status message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @property
    def code_name(self) -> str:
        return self.code.name


class AuthError(CablehubError):
    """UNAUTHENTICATED (a wrong or missing secret) or PERMISSION_DENIED."""


class UnavailableError(CablehubError):
    """UNAVAILABLE: the server cannot be reached, or (publish) the broker
    could not confirm the broadcast in time."""


class InvalidArgumentError(CablehubError):
    """INVALID_ARGUMENT: the server refused the request's arguments."""


class CablehubTimeoutError(CablehubError):
    """DEADLINE_EXCEEDED: the call's timeout passed. (Named so as not to
    shadow the builtin TimeoutError.)"""


class PositionError(CablehubError):
    """FAILED_PRECONDITION: a history read or watch from a position the
    stream can no longer serve (another epoch, publications no longer
    retained). ``epoch`` and ``offset`` are the stream's current position,
    from which a reader starts over; ``None`` when the server sent none."""

    def __init__(self, code: grpc.StatusCode, message: str,
                 epoch: Optional[str] = None, offset: Optional[int] = None):
        super().__init__(code, message)
        self.epoch = epoch
        self.offset = offset


class ClosedError(CablehubError):
    """A call on a client after close(); nothing was sent."""

    def __init__(self, message: str = "client is closed"):
        super().__init__(grpc.StatusCode.CANCELLED, message)


_BY_CODE = {
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: CablehubTimeoutError,
}


def make_error(code: grpc.StatusCode, message: str, trailers: Any = None) -> CablehubError:
    """The typed error for a status and its trailing metadata."""
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        position = stream_position_from_trailers(trailers)
        if position is None:
            return PositionError(code, message)
        return PositionError(code, message, epoch=position[0], offset=position[1])
    return _BY_CODE.get(code, CablehubError)(code, message)


def error_from_rpc(err: Any) -> CablehubError:
    """The typed error for a grpc.RpcError of a sync call or a
    grpc.aio.AioRpcError (both offer code(), details() and
    trailing_metadata())."""
    try:
        trailers = err.trailing_metadata()
    except Exception:  # an RpcError that is not a call (should not happen)
        trailers = None
    return make_error(err.code(), err.details() or "", trailers)


def stream_position_from_trailers(trailers: Any) -> Optional[Tuple[str, int]]:
    """(epoch, offset) of the cablehub.v1.StreamPosition detail in the
    trailer grpc-status-details-bin, or None when there is none."""
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, (bytes, bytearray)):
            try:
                return stream_position_from_details(bytes(value))
            except ValueError:
                return None
    return None


def stream_position_from_details(status: bytes) -> Optional[Tuple[str, int]]:
    """Reads a serialized google.rpc.Status and returns (epoch, offset) of
    its first cablehub.v1.StreamPosition detail, or None.

    Decoded by hand, so that the client needs no googleapis-common-protos:
    Status is {int32 code = 1; string message = 2; repeated Any details = 3}
    and Any is {string type_url = 1; bytes value = 2}. Raises ValueError for
    bytes that are not a well-formed message.
    """
    for number, value in _fields(status):
        if number != 3 or not isinstance(value, bytes):
            continue
        type_url, payload = "", b""
        for any_number, any_value in _fields(value):
            if any_number == 1 and isinstance(any_value, bytes):
                type_url = any_value.decode("utf-8", "replace")
            elif any_number == 2 and isinstance(any_value, bytes):
                payload = any_value
        if type_url.rsplit("/", 1)[-1] == _POSITION_TYPE:
            pos = cable_pb2.StreamPosition.FromString(payload)
            return pos.epoch, pos.offset
    return None


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, Any]]:
    """(field number, value) of each field of a serialized message: ints
    for varint and fixed fields, bytes for length-delimited ones."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if i > len(buf):
            raise ValueError("truncated field")
        yield number, value
