from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DisconnectRequest(_message.Message):
    __slots__ = ["identifier", "reconnect"]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    reconnect: bool
    def __init__(self, identifier: _Optional[str] = ..., reconnect: bool = ...) -> None: ...

class DisconnectResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ["epoch", "limit", "since", "stream"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    limit: int
    since: int
    stream: str
    def __init__(self, stream: _Optional[str] = ..., limit: _Optional[int] = ..., epoch: _Optional[str] = ..., since: _Optional[int] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ["epoch", "offset", "publications", "truncated"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PUBLICATIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    offset: int
    publications: _containers.RepeatedCompositeFieldContainer[HistoryPublication]
    truncated: bool
    def __init__(self, epoch: _Optional[str] = ..., offset: _Optional[int] = ..., publications: _Optional[_Iterable[_Union[HistoryPublication, _Mapping]]] = ..., truncated: bool = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ["nodes", "unavailable_nodes"]
    NODES_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    unavailable_nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., unavailable_nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPresenceRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class GetPresenceResponse(_message.Message):
    __slots__ = ["records", "total", "truncated", "type"]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[PresenceRecord]
    total: int
    truncated: bool
    type: str
    def __init__(self, type: _Optional[str] = ..., total: _Optional[int] = ..., records: _Optional[_Iterable[_Union[PresenceRecord, _Mapping]]] = ..., truncated: bool = ...) -> None: ...

class GetPresenceStatsRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class GetPresenceStatsResponse(_message.Message):
    __slots__ = ["sessions", "users"]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    sessions: int
    users: int
    def __init__(self, users: _Optional[int] = ..., sessions: _Optional[int] = ...) -> None: ...

class HistoryPublication(_message.Message):
    __slots__ = ["data", "offset"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    data: str
    offset: int
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[str] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ["limit", "prefix"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    limit: int
    prefix: str
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ["streams", "truncated", "unavailable_nodes"]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_NODES_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamInfo]
    truncated: bool
    unavailable_nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamInfo, _Mapping]]] = ..., unavailable_nodes: _Optional[_Iterable[str]] = ..., truncated: bool = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ["connections", "deliveries_total", "id", "published_total", "rpc_calls_total", "streams", "subscriptions", "uptime_seconds", "version"]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RPC_CALLS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    connections: int
    deliveries_total: int
    id: str
    published_total: int
    rpc_calls_total: int
    streams: int
    subscriptions: int
    uptime_seconds: int
    version: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ..., uptime_seconds: _Optional[int] = ..., connections: _Optional[int] = ..., subscriptions: _Optional[int] = ..., streams: _Optional[int] = ..., published_total: _Optional[int] = ..., deliveries_total: _Optional[int] = ..., rpc_calls_total: _Optional[int] = ...) -> None: ...

class PresenceRecord(_message.Message):
    __slots__ = ["id", "info"]
    ID_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    id: str
    info: _struct_pb2.Value
    def __init__(self, id: _Optional[str] = ..., info: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class Publication(_message.Message):
    __slots__ = ["data", "idempotency_key", "meta", "stream"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    data: str
    idempotency_key: str
    meta: PublicationMeta
    stream: str
    def __init__(self, stream: _Optional[str] = ..., data: _Optional[str] = ..., meta: _Optional[_Union[PublicationMeta, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PublicationMeta(_message.Message):
    __slots__ = ["broadcast_type", "exclude_socket", "transient"]
    BROADCAST_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SOCKET_FIELD_NUMBER: _ClassVar[int]
    TRANSIENT_FIELD_NUMBER: _ClassVar[int]
    broadcast_type: str
    exclude_socket: str
    transient: bool
    def __init__(self, exclude_socket: _Optional[str] = ..., broadcast_type: _Optional[str] = ..., transient: bool = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ["publications"]
    PUBLICATIONS_FIELD_NUMBER: _ClassVar[int]
    publications: _containers.RepeatedCompositeFieldContainer[Publication]
    def __init__(self, publications: _Optional[_Iterable[_Union[Publication, _Mapping]]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ["name", "subscribers"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    subscribers: int
    def __init__(self, name: _Optional[str] = ..., subscribers: _Optional[int] = ...) -> None: ...

class StreamPosition(_message.Message):
    __slots__ = ["epoch", "offset"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    offset: int
    def __init__(self, epoch: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class StreamPublication(_message.Message):
    __slots__ = ["data", "epoch", "offset", "stream"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    data: str
    epoch: str
    offset: int
    stream: str
    def __init__(self, stream: _Optional[str] = ..., epoch: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ["epoch", "since", "stream"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    since: int
    stream: str
    def __init__(self, stream: _Optional[str] = ..., epoch: _Optional[str] = ..., since: _Optional[int] = ...) -> None: ...
