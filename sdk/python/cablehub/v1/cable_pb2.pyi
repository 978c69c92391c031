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
