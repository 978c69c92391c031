"""The blocking client for Cablehub's gRPC server API
(cablehub.v1.CableService). cablehub.aio has the same calls for asyncio."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

import grpc

from cablehub import _core
from cablehub._core import DEFAULT_TIMEOUT, api_token
from cablehub.errors import CablehubError, ClosedError, UnavailableError, error_from_rpc, make_error
from cablehub.results import History, Info, Presence, PresenceStats, StreamPublication, Streams
from cablehub.v1 import cable_pb2_grpc

__all__ = ["Client", "Watch", "DEFAULT_TIMEOUT", "api_token"]


class Client:
    """Calls a Cablehub node's gRPC API.

    ``address`` is "host:port" (plaintext HTTP/2, h2c), "http://host:port"
    (the same) or "https://host:port" (TLS, verified with the system's CAs
    or ``root_certificates``). Anything else is a ValueError.

    Authentication: ``secret`` is the server's --secret, from which the
    client derives the API token as the server does; ``api_secret`` is the
    server's --api_secret, sent as the token as is. Giving both is a
    ValueError; with neither, calls carry no authorization (public mode).

    ``timeout`` is each unary call's deadline in seconds (None: none); a
    watch has none. ``retries`` (default 0) retries a call that failed with
    UNAVAILABLE up to that many times, 100 ms apart doubling; a publish is
    then given an idempotency key on every publication lacking one, so that
    a retry cannot deliver twice.

    TLS on a "host:port" address: ``root_certificates`` (PEM bytes of the
    CA that signed the server's certificate; ``True`` or ``b""`` for the
    system's roots) or ``credentials`` (any ``grpc.ChannelCredentials``).

    Use the client as a context manager, or call close(); a call after
    close() raises ClosedError.
    """

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
            self._channel = grpc.secure_channel(s.target, s.credentials, options=_core.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(s.target, options=_core.CHANNEL_OPTIONS)
        self._stub = cable_pb2_grpc.CableServiceStub(self._channel)
        self._closed = threading.Event()
        self._watches: "weakref.WeakSet[Watch]" = weakref.WeakSet()
        self._lock = threading.Lock()

    # --- calls ---------------------------------------------------------

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
        receive it; ``transient`` keeps it out of history (no offset);
        ``broadcast_type`` becomes the "type" of the message clients receive;
        ``idempotency_key`` makes a repeat with the same stream and key,
        within the server's idempotency window, a no-op that succeeds.
        """
        pub = _core.publication(stream, data, exclude_socket, transient, broadcast_type, idempotency_key)
        self._run(_core.publish_op(_core.keyed([pub], self._settings.retries)))

    def publish_batch(self, publications: Iterable[Mapping[str, Any]]) -> None:
        """Publishes several publications in one request, delivered in order.

        Each is a mapping with the keys of publish()'s arguments: "stream"
        and "data" required, "exclude_socket", "transient", "broadcast_type"
        and "idempotency_key" optional; another key is a TypeError. The
        server validates the batch as a whole: one invalid publication
        rejects all of them and nothing is delivered.
        """
        self._run(_core.publish_op(_core.publications(publications, self._settings.retries)))

    def presence(self, stream: str) -> Presence:
        """The presence records of ``stream``: Presence(total, records,
        truncated)."""
        return self._run(_core.presence_op(stream))

    def presence_stats(self, stream: str) -> PresenceStats:
        """How many are present on ``stream``: PresenceStats(users,
        sessions)."""
        return self._run(_core.presence_stats_op(stream))

    def history(self, stream: str, limit: int = 0, epoch: str = "", since: Optional[int] = None) -> History:
        """What ``stream``'s history retains, oldest first, and its position.

        Without ``since``: the latest ``limit`` publications (0: all). With
        ``since`` (an offset) and its ``epoch``: the first ``limit``
        publications after it. A position the stream cannot serve (another
        epoch, publications no longer retained) raises PositionError with
        the stream's current ``epoch`` and ``offset``.
        """
        return self._run(_core.history_op(stream, limit, epoch, since))

    def list_streams(self, prefix: str = "", limit: int = 0) -> Streams:
        """The streams with at least one subscriber anywhere in the cluster,
        sorted by name, with their subscriber counts: only names starting
        with ``prefix``, at most ``limit`` (0: the server's 100)."""
        return self._run(_core.list_streams_op(prefix, limit))

    def info(self) -> Info:
        """The cluster's live nodes: Info(nodes, unavailable_nodes)."""
        return self._run(_core.info_op())

    def disconnect(self, identifier: str, reconnect: bool = False) -> None:
        """Closes every session whose connection identifiers (a JWT's "ext"
        claim) equal ``identifier``; clients are told whether to reconnect.
        Sessions close asynchronously after the call returns."""
        self._run(_core.disconnect_op(identifier, reconnect))

    def watch(self, stream: str, epoch: str = "", since: Optional[int] = None, *, resume: bool = True) -> "Watch":
        """Watches ``stream``: returns a Watch, an iterator of
        StreamPublication (stream, epoch, offset, data) as they are
        published, in offset order.

        With ``since`` (an offset) and its ``epoch``, the publications after
        it are replayed from history first. When the connection breaks
        (UNAVAILABLE: the server restarted, the network failed) the watch
        re-opens, from the last offset it delivered, after a backoff of 100
        ms doubling up to 5 s, waiting for the server to be reachable, for
        as long as it is iterated (so also when the server cannot be reached
        at the start); ``resume=False`` raises UnavailableError instead. Any
        other failure ends it with its error: PositionError (the position is
        lost, the epoch changed), AuthError, CablehubError with
        RESOURCE_EXHAUSTED (too slow a reader).

        The call starts at once. Stop it with Watch.close() (or a ``with``
        block, or close() of the client); ``wait_live()`` waits until the
        server listens to the stream.
        """
        self._check_open()
        w = Watch(self, _core.WatchState(stream, epoch, since, resume))
        with self._lock:
            self._watches.add(w)
        if self._closed.is_set():  # closed meanwhile
            w.close()
            raise ClosedError()
        return w

    # --- lifecycle -----------------------------------------------------

    def close(self) -> None:
        """Stops the client's watches and closes the channel; calls in
        flight fail with ClosedError. Closing twice is fine."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.close()
        _close_channel(self._channel)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ClosedError()

    def _error(self, err: grpc.RpcError) -> CablehubError:
        if self._closed.is_set() and err.code() == grpc.StatusCode.CANCELLED:
            return ClosedError()
        return error_from_rpc(err)

    def _run(self, op: _core.Op) -> Any:
        self._check_open()
        method = getattr(self._stub, op.method)
        s = self._settings
        delays = _core.backoff()
        attempts_left = s.retries
        while True:
            try:
                return op.convert(method(op.request, timeout=s.timeout, metadata=s.metadata))
            except grpc.RpcError as err:
                error = self._error(err)
            except ValueError as err:  # grpc's "Cannot invoke RPC on closed channel!"
                if self._closed.is_set():
                    raise ClosedError() from None
                raise
            if not isinstance(error, UnavailableError) or attempts_left <= 0:
                raise error
            attempts_left -= 1
            if self._wait_ready(next(delays)):
                raise ClosedError()

    def _wait_ready(self, delay: float) -> bool:
        """Waits ``delay`` seconds before a retry, or less once the channel
        is connected again; True at once when the client closes.

        The waiting is what makes grpcio's blocking channel reconnect: it
        advances its timers, the reconnect backoff among them, only while
        something polls it, and a call failing fast does not. A channel that
        failed to connect would stay failed, also once the server is back,
        without channel_ready_future's watcher.
        """
        ready = grpc.channel_ready_future(self._channel)
        deadline = time.monotonic() + delay
        try:
            while not self._closed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                try:
                    ready.result(timeout=min(left, 0.05))
                    return False
                except grpc.FutureTimeoutError:
                    pass
            return True
        finally:
            ready.cancel()


def _close_channel(channel: grpc.Channel) -> None:
    """Closes a channel once its connectivity watcher, if one ran (see
    Client._wait_ready), has stopped: grpcio's watcher thread stops within
    0.2 s of its last subscriber leaving, and a channel closed under it
    makes it die with a traceback ("Cannot monitor channel state")."""
    state = getattr(channel, "_connectivity_state", None)
    deadline = time.monotonic() + 1.0
    while getattr(state, "polling", False) and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.close()


class Watch:
    """A running watch of a stream (see Client.watch): iterate it for
    StreamPublication objects. ``position`` is (epoch, offset) of the last
    publication it delivered (None before any). Stop it with close(), a
    ``with`` block or the client's close(): iteration then ends without an
    error, also in a thread blocked waiting for the next publication."""

    def __init__(self, client: Client, state: _core.WatchState):
        self._client = client
        self._state = state
        self._closed = threading.Event()
        self._done = False
        self._lock = threading.Lock()
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
        c = self._client
        with self._lock:
            if self._closed.is_set():
                return
            self._live = False
            # A resuming watch waits for the server to be reachable
            # (wait_for_ready) instead of failing fast: the call itself then
            # drives the channel's reconnection.
            self._call = c._stub.Watch(self._state.request(), metadata=c._settings.metadata,
                                       wait_for_ready=self._state.resume)

    def wait_live(self, timeout: Optional[float] = None) -> bool:
        """Waits until the server listens to the stream (its response
        headers): a publication made after that is delivered. True once
        live, False when ``timeout`` seconds passed first; raises the
        call's error when it failed before going live."""
        call = self._call
        if call is None or self._closed.is_set():
            raise ClosedError("watch is closed")
        arrived = threading.Event()

        def headers() -> None:
            try:
                call.initial_metadata()
            finally:
                arrived.set()

        threading.Thread(target=headers, daemon=True, name="cablehub-watch-headers").start()
        if not arrived.wait(timeout):
            return False
        if _core.is_live(call.initial_metadata()):
            return True
        if self._closed.is_set():
            raise ClosedError("watch is closed")
        code = call.code()  # the call ended without headers
        raise make_error(code, call.details() or "", call.trailing_metadata())

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> StreamPublication:
        while True:
            if self._done or self._closed.is_set():
                self._finish()
                raise StopIteration
            call = self._call
            try:
                if not self._live and _core.is_live(call.initial_metadata()):
                    self._live = True
                    self._state.went_live()
                msg = next(call)
                return self._state.delivered(msg)
            except StopIteration:
                code: Optional[grpc.StatusCode] = grpc.StatusCode.OK
                error: Optional[CablehubError] = None
            except grpc.RpcError as err:
                if self._closed.is_set():
                    continue
                code, error = err.code(), self._client._error(err)
            if not self._state.resumes_after(code):
                self._finish()
                raise error if error is not None else StopIteration
            if self._closed.wait(self._state.next_delay()) or self._client._closed.is_set():
                continue
            self._open()

    def _finish(self) -> None:
        self._done = True
        self.close()

    def close(self) -> None:
        """Stops the watch: cancels its call. Closing twice is fine."""
        self._closed.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()

    cancel = close

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
