"""What the sync client (cablehub.Client) and the asyncio client
(cablehub.aio.Client) share: reading the constructor's options, building
each call's request and reading its answer, the retry and resume rules.
The two clients only differ in how they wait."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import grpc

from cablehub import results
from cablehub.v1 import cable_pb2

DEFAULT_TIMEOUT = 5.0

# Backoff between retries of a unary call and between resumes of a watch:
# 100 ms doubling up to 5 s.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0

# The response header the server sends once a watch is live.
WATCH_LIVE_KEY = "cablehub-watch"
WATCH_LIVE_VALUE = "live"

# The channel reconnects to a restarted server on the same schedule as the
# client's own backoff (gRPC's defaults start at 1 s and grow to 120 s).
# grpc.min_reconnect_backoff_ms stays at its default: it is also the least
# time a connection attempt is given (20 s), and lowering it would turn a
# slow server's DEADLINE_EXCEEDED into UNAVAILABLE.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", int(BACKOFF_FIRST * 1000)),
    ("grpc.max_reconnect_backoff_ms", int(BACKOFF_MAX * 1000)),
)

_PUBLICATION_KEYS = ("stream", "data", "exclude_socket", "transient", "broadcast_type", "idempotency_key")


def api_token(secret: str) -> str:
    """The API bearer token the server derives from its application secret:
    lowercase hex HMAC-SHA256 of "api-cable" keyed with the secret."""
    return hmac.new(secret.encode(), b"api-cable", hashlib.sha256).hexdigest()


def backoff() -> Iterator[float]:
    """The delays before each retry: 0.1, 0.2, 0.4, ... up to 5 s."""
    delay = BACKOFF_FIRST
    while True:
        yield delay
        delay = min(delay * 2, BACKOFF_MAX)


def parse_address(address: str) -> Tuple[str, Optional[bool]]:
    """The gRPC target ("host:port") of an address, and whether its scheme
    asks for TLS (True for https://, False for http://, None for none).

    Accepted: "host:port", "http://host[:port]" (port 80 by default) and
    "https://host[:port]" (443). Anything else is a ValueError.
    """
    if not isinstance(address, str) or not address:
        raise ValueError("address must be a non-empty string like host:port")
    tls: Optional[bool] = None
    if "://" in address:
        scheme = address.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(
                f"address {address!r}: unsupported scheme {scheme!r}; "
                "give host:port, http://host:port or https://host:port")
        tls = scheme == "https"
        parts = urlsplit(address)
    else:
        parts = urlsplit("//" + address)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"address {address!r}: a gRPC address has no path, query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"address {address!r}: user info is not supported; use secret or api_secret")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"address {address!r}: {err}") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"address {address!r} has no host")
    if port is None:
        if tls is None:
            raise ValueError(f"address {address!r} has no port: give host:port")
        port = 443 if tls else 80
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}", tls


@dataclass(frozen=True)
class Settings:
    """The constructor's options, checked: where to connect and how."""

    target: str
    credentials: Optional[grpc.ChannelCredentials]
    metadata: Tuple[Tuple[str, str], ...]
    timeout: Optional[float]
    retries: int


def settings(
    address: str,
    secret: Optional[str],
    api_secret: Optional[str],
    timeout: Optional[float],
    retries: int,
    root_certificates: Union[bytes, bool, None],
    credentials: Optional[grpc.ChannelCredentials],
) -> Settings:
    target, scheme_tls = parse_address(address)
    if secret and api_secret:
        raise ValueError("give secret or api_secret, not both")
    token = api_secret or (api_token(secret) if secret else None)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be positive seconds, or None for no deadline")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError("retries must be an int >= 0")
    wants_tls = credentials is not None or (root_certificates is not None and root_certificates is not False)
    if scheme_tls is False and wants_tls:
        raise ValueError(f"address {address!r} is plaintext (http://) but TLS options were given; use https://")
    if credentials is None and (wants_tls or scheme_tls):
        roots = root_certificates if isinstance(root_certificates, bytes) and root_certificates else None
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return Settings(target=target, credentials=credentials, metadata=metadata, timeout=timeout, retries=retries)


@dataclass(frozen=True)
class Op:
    """One unary call: the stub's method name, the request, and how the
    answer becomes what the client returns. Every call of the API may be
    retried on UNAVAILABLE: reads and disconnect are safe to repeat, and a
    publish gets an idempotency key on each publication before its first
    attempt when retries are on (see publications())."""

    method: str
    request: Any
    convert: Callable[[Any], Any]


def publication(
    stream: str,
    data: str,
    exclude_socket: Optional[str] = None,
    transient: bool = False,
    broadcast_type: Optional[str] = None,
    idempotency_key: Optional[str] = None,
) -> cable_pb2.Publication:
    if not isinstance(stream, str):
        raise TypeError(f"stream must be a str, not {type(stream).__name__}")
    if not isinstance(data, str):
        raise TypeError(f"data must be a str (usually JSON text), not {type(data).__name__}")
    pub = cable_pb2.Publication(stream=stream, data=data, idempotency_key=idempotency_key or "")
    # Meta is sent only when an option is set: the server treats an absent
    # meta as all defaults.
    if exclude_socket or transient or broadcast_type:
        pub.meta.CopyFrom(
            cable_pb2.PublicationMeta(
                exclude_socket=exclude_socket or "",
                transient=bool(transient),
                broadcast_type=broadcast_type or "",
            )
        )
    return pub


def publications(items: Iterable[Mapping[str, Any]], retries: int) -> List[cable_pb2.Publication]:
    pubs = []
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError(f"a publication is a mapping with the keys {', '.join(_PUBLICATION_KEYS)}, "
                            f"not {type(item).__name__}")
        unknown = set(item) - set(_PUBLICATION_KEYS)
        if unknown:
            raise TypeError(f"unknown publication keys: {', '.join(sorted(map(str, unknown)))}")
        if "stream" not in item or "data" not in item:
            raise TypeError("a publication needs 'stream' and 'data'")
        pubs.append(publication(**item))
    return keyed(pubs, retries)


def keyed(pubs: List[cable_pb2.Publication], retries: int) -> List[cable_pb2.Publication]:
    """With retries on, gives each publication lacking one an idempotency
    key (a random UUID) before the first attempt: the server delivers a
    stream and key once within its idempotency window, so a retry cannot
    deliver twice."""
    if retries > 0:
        for pub in pubs:
            if not pub.idempotency_key:
                pub.idempotency_key = str(uuid.uuid4())
    return pubs


def publish_op(pubs: List[cable_pb2.Publication]) -> Op:
    return Op("Publish", cable_pb2.PublishRequest(publications=pubs), results.nothing)


def presence_op(stream: str) -> Op:
    return Op("GetPresence", cable_pb2.GetPresenceRequest(stream=stream), results.presence_from)


def presence_stats_op(stream: str) -> Op:
    return Op("GetPresenceStats", cable_pb2.GetPresenceStatsRequest(stream=stream),
              results.presence_stats_from)


def _since(since: Optional[int]) -> Optional[int]:
    if since is None:
        return None
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise ValueError("since must be an offset (an int >= 0) or None")
    return since


def history_op(stream: str, limit: int, epoch: str, since: Optional[int]) -> Op:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("limit must be an int >= 0 (0: every retained publication)")
    req = cable_pb2.GetHistoryRequest(stream=stream, limit=limit, epoch=epoch or "")
    if _since(since) is not None:
        req.since = since
    return Op("GetHistory", req, results.history_from)


def list_streams_op(prefix: str, limit: int) -> Op:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("limit must be an int >= 0 (0: the server's default, 100)")
    return Op("ListStreams", cable_pb2.ListStreamsRequest(prefix=prefix or "", limit=limit),
              results.streams_from)


def info_op() -> Op:
    return Op("GetInfo", cable_pb2.GetInfoRequest(), results.info_from)


def disconnect_op(identifier: str, reconnect: bool) -> Op:
    return Op("Disconnect", cable_pb2.DisconnectRequest(identifier=identifier, reconnect=bool(reconnect)),
              results.nothing)


def is_live(metadata: Any) -> bool:
    """Whether a watch's response headers say it is live."""
    return any(k == WATCH_LIVE_KEY and v == WATCH_LIVE_VALUE for k, v in metadata or ())


class WatchState:
    """Where a watch is: the position to resume from (the last offset it
    delivered and that offset's epoch) and the backoff between resumes.

    A watch re-opens its call after UNAVAILABLE, or after the server ended
    it without an error, which it never does while it runs, with since set
    to the last offset delivered; transient publications (offset 0) do not
    move the position. Before any publication it re-opens from where it
    started. Any other error ends the watch."""

    def __init__(self, stream: str, epoch: str, since: Optional[int], resume: bool):
        self.stream = stream
        self.epoch = epoch or ""
        self.since = _since(since)
        self.resume = resume
        self._delays = backoff()

    def request(self) -> cable_pb2.WatchRequest:
        req = cable_pb2.WatchRequest(stream=self.stream, epoch=self.epoch)
        if self.since is not None:
            req.since = self.since
        return req

    def delivered(self, msg: cable_pb2.StreamPublication) -> results.StreamPublication:
        if msg.offset > 0:
            self.epoch, self.since = msg.epoch, msg.offset
        return results.stream_publication_from(msg)

    def went_live(self) -> None:
        self._delays = backoff()

    def resumes_after(self, code: Optional[grpc.StatusCode]) -> bool:
        """Whether a call that ended with ``code`` (OK included) is
        re-opened."""
        return self.resume and code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK)

    def next_delay(self) -> float:
        return next(self._delays)
