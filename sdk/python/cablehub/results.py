"""What the client's calls return: plain frozen dataclasses, made from the
generated messages by the functions at the bottom."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List

from google.protobuf import struct_pb2

from cablehub.v1 import cable_pb2

__all__ = [
    "PresenceRecord",
    "Presence",
    "PresenceStats",
    "HistoryPublication",
    "History",
    "StreamInfo",
    "Streams",
    "NodeInfo",
    "Info",
    "StreamPublication",
    "value_to_python",
]


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


@dataclass(frozen=True)
class PresenceStats:
    """How many are present on a stream: unique presence ids (``users``) and
    joined sessions (``sessions``; one user may have several)."""

    users: int
    sessions: int


@dataclass(frozen=True)
class HistoryPublication:
    """A publication kept in history: its offset and data as published."""

    offset: int
    data: str


@dataclass(frozen=True)
class History:
    """A read of a stream's history: the stream's ``epoch`` and the
    ``offset`` of its latest publication (its position), and the
    publications read, oldest first. ``truncated`` says the server cut the
    answer short (3 MiB): read on with since=the last offset returned."""

    epoch: str
    offset: int
    publications: List[HistoryPublication] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class StreamInfo:
    """A stream with subscribers, counted over the nodes that answered."""

    name: str
    subscribers: int


@dataclass(frozen=True)
class Streams:
    """The streams with subscribers, sorted by name. ``unavailable_nodes``
    names the nodes that did not answer in time (their subscribers are not
    counted); ``truncated`` says more streams match than the limit."""

    streams: List[StreamInfo] = field(default_factory=list)
    unavailable_nodes: List[str] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class NodeInfo:
    """One node of the cluster: its ``id`` (new at every start), ``version``,
    seconds since it started, its client connections, their subscriptions
    and the streams with at least one subscriber on it.

    ``published_total`` counts the publications accepted through the node
    (its API and broadcast adapters), ``deliveries_total`` the publications
    it queued to its clients (one per subscriber a publication reached) and
    ``rpc_calls_total`` its calls to the RPC back end. They are counters
    since the node started: a rate is the difference between two reads over
    the time between them, and a smaller value than before means the node
    restarted (its ``id`` changes too)."""

    id: str
    version: str
    uptime_seconds: int
    connections: int
    subscriptions: int
    streams: int
    published_total: int = 0
    deliveries_total: int = 0
    rpc_calls_total: int = 0


@dataclass(frozen=True)
class Info:
    """The cluster's live nodes that answered, sorted by id, and the ids of
    those that did not answer in time."""

    nodes: List[NodeInfo] = field(default_factory=list)
    unavailable_nodes: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class StreamPublication:
    """A publication of a watched stream. ``epoch`` and ``offset`` are its
    position ("" and 0 for a transient publication); ``data`` is as it was
    published."""

    stream: str
    epoch: str
    offset: int
    data: str


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


def presence_from(resp: cable_pb2.GetPresenceResponse) -> Presence:
    records = [
        PresenceRecord(id=r.id, info=value_to_python(r.info) if r.HasField("info") else None)
        for r in resp.records
    ]
    return Presence(total=resp.total, records=records, truncated=resp.truncated)


def presence_stats_from(resp: cable_pb2.GetPresenceStatsResponse) -> PresenceStats:
    return PresenceStats(users=resp.users, sessions=resp.sessions)


def history_from(resp: cable_pb2.GetHistoryResponse) -> History:
    return History(
        epoch=resp.epoch,
        offset=resp.offset,
        publications=[HistoryPublication(offset=p.offset, data=p.data) for p in resp.publications],
        truncated=resp.truncated,
    )


def streams_from(resp: cable_pb2.ListStreamsResponse) -> Streams:
    return Streams(
        streams=[StreamInfo(name=s.name, subscribers=s.subscribers) for s in resp.streams],
        unavailable_nodes=list(resp.unavailable_nodes),
        truncated=resp.truncated,
    )


def info_from(resp: cable_pb2.GetInfoResponse) -> Info:
    return Info(
        nodes=[
            NodeInfo(id=n.id, version=n.version, uptime_seconds=n.uptime_seconds,
                     connections=n.connections, subscriptions=n.subscriptions, streams=n.streams,
                     published_total=n.published_total, deliveries_total=n.deliveries_total,
                     rpc_calls_total=n.rpc_calls_total)
            for n in resp.nodes
        ],
        unavailable_nodes=list(resp.unavailable_nodes),
    )


def stream_publication_from(msg: cable_pb2.StreamPublication) -> StreamPublication:
    return StreamPublication(stream=msg.stream, epoch=msg.epoch, offset=msg.offset, data=msg.data)


def nothing(_resp: Any) -> None:
    return None
