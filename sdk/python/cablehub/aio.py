"""The asyncio client for Cablehub's gRPC server API, on grpc.aio.

    from cablehub.aio import Client

    async with Client("127.0.0.1:8080", secret="app-secret") as client:
        await client.publish("chat", '{"text": "hi"}')
        async for pub in client.watch("chat"):
            print(pub.offset, pub.data)

It takes the same options and offers the same calls as cablehub.Client,
as coroutines, with the same results and errors (see that class for what
each call does); watch() returns an async iterator. Create it inside a
running event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

import grpc
import grpc.aio

from cablehub import _core
from cablehub._core import DEFAULT_TIMEOUT
from cablehub.errors import CablehubError, ClosedError, UnavailableError, error_from_rpc, make_error
from cablehub.results import History, Info, Presence, PresenceStats, StreamPublication, Streams
from cablehub.v1 import cable_pb2_grpc

__all__ = ["Client", "AsyncClient", "Watch"]


class Client:
    """The asyncio twin of cablehub.Client: the same constructor
    arguments, each call a coroutine, watch() an async iterator. Use it as
    ``async with``, or ``await close()``."""

    def __init__(
        self,
        address: str,
        *,
        secret: Optional[str] = None,
        api_secret: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        retries: int = 0,
        root_certificates: Union[bytes, bool, None] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
    ):
        self._settings = _core.settings(address, secret, api_secret, timeout, retries,
                                        root_certificates, credentials)
        s = self._settings
        if s.credentials is not None:
            self._channel = grpc.aio.secure_channel(s.target, s.credentials, options=_core.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(s.target, options=_core.CHANNEL_OPTIONS)
        self._stub = cable_pb2_grpc.CableServiceStub(self._channel)
        self._closed = False
        self._closed_event: Optional[asyncio.Event] = None
        self._watches: "weakref.WeakSet[Watch]" = weakref.WeakSet()

    # --- calls (see cablehub.Client for each) ---------------------------

    async def publish(
        self,
        stream: str,
        data: str,
        exclude_socket: Optional[str] = None,
        transient: bool = False,
        broadcast_type: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> None:
        """Publishes ``data`` to ``stream``; see cablehub.Client.publish."""
        pub = _core.publication(stream, data, exclude_socket, transient, broadcast_type, idempotency_key)
        await self._run(_core.publish_op(_core.keyed([pub], self._settings.retries)))

    async def publish_batch(self, publications: Iterable[Mapping[str, Any]]) -> None:
        """Publishes several publications in one request; see
        cablehub.Client.publish_batch."""
        await self._run(_core.publish_op(_core.publications(publications, self._settings.retries)))

    async def presence(self, stream: str) -> Presence:
        """The presence records of ``stream``."""
        return await self._run(_core.presence_op(stream))

    async def presence_stats(self, stream: str) -> PresenceStats:
        """How many are present on ``stream``."""
        return await self._run(_core.presence_stats_op(stream))

    async def history(self, stream: str, limit: int = 0, epoch: str = "", since: Optional[int] = None) -> History:
        """What ``stream``'s history retains; see cablehub.Client.history."""
        return await self._run(_core.history_op(stream, limit, epoch, since))

    async def list_streams(self, prefix: str = "", limit: int = 0) -> Streams:
        """The streams with subscribers; see cablehub.Client.list_streams."""
        return await self._run(_core.list_streams_op(prefix, limit))

    async def info(self) -> Info:
        """The cluster's live nodes."""
        return await self._run(_core.info_op())

    async def disconnect(self, identifier: str, reconnect: bool = False) -> None:
        """Closes the sessions identified by ``identifier``."""
        await self._run(_core.disconnect_op(identifier, reconnect))

    def watch(self, stream: str, epoch: str = "", since: Optional[int] = None, *, resume: bool = True) -> "Watch":
        """Watches ``stream``: an async iterator of StreamPublication, with
        the same replay, resume and errors as cablehub.Client.watch. The
        call starts at once; stop it with ``await watch.aclose()`` (or
        close()), ``async with``, by cancelling the task iterating it, or by
        closing the client."""
        self._check_open()
        w = Watch(self, _core.WatchState(stream, epoch, since, resume))
        self._watches.add(w)
        return w

    # --- lifecycle -----------------------------------------------------

    async def close(self) -> None:
        """Stops the client's watches and closes the channel; calls in
        flight fail with ClosedError. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()
        for w in list(self._watches):
            w.close()
        await self._channel.close()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- internals -----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError()

    def _error(self, err: grpc.RpcError) -> CablehubError:
        if self._closed and err.code() == grpc.StatusCode.CANCELLED:
            return ClosedError()
        return error_from_rpc(err)

    async def _sleep(self, delay: float) -> bool:
        """Sleeps ``delay`` seconds; True at once when the client closes."""
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        if self._closed:
            return True
        try:
            await asyncio.wait_for(self._closed_event.wait(), delay)
            return True
        except asyncio.TimeoutError:
            return False

    async def _run(self, op: _core.Op) -> Any:
        self._check_open()
        method = getattr(self._stub, op.method)
        s = self._settings
        delays = _core.backoff()
        attempts_left = s.retries
        while True:
            try:
                return op.convert(await method(op.request, timeout=s.timeout, metadata=s.metadata))
            except grpc.RpcError as err:
                error = self._error(err)
            except asyncio.CancelledError:
                # The channel was closed under the call, or the task was
                # cancelled: the latter propagates.
                if self._closed:
                    raise ClosedError() from None
                raise
            except grpc.aio.UsageError:
                if self._closed:
                    raise ClosedError() from None
                raise
            if not isinstance(error, UnavailableError) or attempts_left <= 0:
                raise error
            attempts_left -= 1
            if await self._sleep(next(delays)):
                raise ClosedError()


AsyncClient = Client


class Watch:
    """A running watch of a stream (see Client.watch): ``async for`` it for
    StreamPublication objects. ``position`` is (epoch, offset) of the last
    publication delivered (None before any). After close() the iteration
    ends without an error."""

    def __init__(self, client: Client, state: _core.WatchState):
        self._client = client
        self._state = state
        self._closed = False
        self._done = False
        self._wake: Optional[asyncio.Event] = None
        self._call: Any = None
        self._live = False
        self._open()

    @property
    def stream(self) -> str:
        return self._state.stream

    @property
    def position(self) -> Optional[Tuple[str, int]]:
        st = self._state
        return None if st.since is None else (st.epoch, st.since)

    def _open(self) -> None:
        if self._closed:
            return
        c = self._client
        self._live = False
        self._call = c._stub.Watch(self._state.request(), metadata=c._settings.metadata,
                                   wait_for_ready=self._state.resume)

    async def wait_live(self, timeout: Optional[float] = None) -> bool:
        """Waits until the server listens to the stream (its response
        headers). True once live, False when ``timeout`` seconds passed
        first; raises the call's error when it failed before going live."""
        call = self._call
        if call is None or self._closed:
            raise ClosedError("watch is closed")
        try:
            md = await asyncio.wait_for(call.initial_metadata(), timeout)
        except asyncio.TimeoutError:
            return False
        except asyncio.CancelledError:
            if self._closed:
                raise ClosedError("watch is closed") from None
            raise
        if _core.is_live(md):
            return True
        if self._closed:
            raise ClosedError("watch is closed")
        code = await call.code()  # the call ended without headers
        raise make_error(code, await call.details() or "", await call.trailing_metadata())

    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> StreamPublication:
        while True:
            if self._done or self._closed:
                self._finish()
                raise StopAsyncIteration
            call = self._call
            code: Optional[grpc.StatusCode] = grpc.StatusCode.OK
            error: Optional[CablehubError] = None
            try:
                if not self._live and _core.is_live(await call.initial_metadata()):
                    self._live = True
                    self._state.went_live()
                msg = await call.read()
                if msg is not grpc.aio.EOF:
                    return self._state.delivered(msg)
            except asyncio.CancelledError:
                if self._closed:
                    continue
                self.close()  # the iterating task was cancelled
                raise
            except grpc.RpcError as err:
                if self._closed:
                    continue
                code, error = err.code(), self._client._error(err)
            if not self._state.resumes_after(code):
                self._finish()
                if error is not None:
                    raise error
                raise StopAsyncIteration
            if await self._sleep(self._state.next_delay()) or self._client._closed:
                continue
            self._open()

    async def _sleep(self, delay: float) -> bool:
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._closed:
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
            return True
        except asyncio.TimeoutError:
            return False

    def _finish(self) -> None:
        self._done = True
        self.close()

    def close(self) -> None:
        """Stops the watch: cancels its call. Closing twice is fine."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        if self._call is not None:
            self._call.cancel()

    cancel = close

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "Watch":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and self._call is not None:
                self._call.cancel()
        except Exception:
            pass
