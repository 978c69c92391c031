"""Test helpers: the built cablehub binary on a random port, a WebSocket
subscriber speaking the Action Cable protocol, and HS256 JWTs."""

from __future__ import annotations

import base64
import faulthandler
import hashlib
import hmac
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

import websocket

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("CABLEHUB_BIN") or os.path.join(REPO, "bin", "cablehub")
SECRET = "py-sdk-secret"
WAIT = 5.0  # seconds any single expectation may take
WATCHDOG = 120.0  # seconds a whole test may take before the run is stopped

_RUNNING: "set[Server]" = set()  # the servers the watchdog stops

_READY = re.compile(r"Handle health requests at https?://([^/\s\"]+)/")
_GRPC = re.compile(r"Handle gRPC API requests at ([^\s\"]+)")
_EPOCH = re.compile(r"broker \(epoch: ([^,\s]+)")


class Server:
    """cablehub on 127.0.0.1 (port 0: a free one); ``addr`` is the main
    listener (WebSockets), ``grpc_addr`` the gRPC API's address and
    ``epoch`` the in-memory broker's epoch, which broadcast frames carry
    (None with another broker). restart() stops it and starts it again on
    the same port."""

    def __init__(self, *args: str, port: int = 0):
        self.args = args
        self.epoch: Optional[str] = None
        self.port = port
        self.start()

    def start(self) -> None:
        """Starts the binary (again, after stop(), on the same port)."""
        port = self.port
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYCABLE_") and k != "PORT"}
        _RUNNING.add(self)
        self.proc = subprocess.Popen(
            [BINARY, "--host", "127.0.0.1", "--port", str(port), *self.args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._logs: List[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.addr = self._wait_for(_READY)
            self.grpc_addr = self._wait_for(_GRPC)
            if "--broker" not in self.args:
                self.epoch = self._wait_for(_EPOCH)
        except Exception:
            self.stop()
            raise
        self.port = int(self.addr.rsplit(":", 1)[1])

    def restart(self) -> None:
        self.stop()
        self.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self._logs.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def logs(self) -> str:
        with self._changed:
            return "".join(self._logs)

    def _wait_for(self, pattern: re.Pattern) -> str:
        deadline = time.monotonic() + 20
        with self._changed:
            while True:
                m = pattern.search("".join(self._logs))
                if m:
                    return m.group(1)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError("cablehub did not start:\n" + "".join(self._logs))
                self._changed.wait(min(left, 0.1))

    def stop(self) -> None:
        """Stops the server gracefully (SIGTERM), killing it after 10 s."""
        _RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def kill(self) -> None:
        """Stops the server at once (SIGKILL), as a crash would."""
        _RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def watchdog(test: unittest.TestCase, seconds: float = WATCHDOG) -> None:
    """Ends the whole run, with every thread's traceback and the servers
    stopped, when ``test`` is still running after ``seconds``: a call that
    blocks for good (a watch that never delivers) cannot hang CI."""
    def expire() -> None:
        sys.stderr.write(f"\nwatchdog: {test.id()} still runs after {seconds:.0f} s; stopping\n")
        faulthandler.dump_traceback(all_threads=True)
        for server in list(_RUNNING):
            server.proc.kill()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    test.addCleanup(timer.cancel)


def free_port() -> int:
    """A port nothing listens on (the kernel's pick, closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS_URL = os.environ.get("CABLEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


def redis_args() -> Tuple[str, ...]:
    """Flags for a node on the Redis broker and pub/sub (history and epochs
    outlive the node), without the HTTP broadcast adapter's fixed port."""
    return ("--broker", "redis", "--pubsub", "redis", "--redis_url", REDIS_URL, "--broadcast_adapter", "")


def require_redis(test: unittest.TestCase) -> None:
    """Skips the test when Redis is not reachable, except under CI, where
    that is a failure."""
    parts = urlsplit(REDIS_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 6379), timeout=1).close()
    except OSError as err:
        if os.environ.get("CI"):
            raise AssertionError(f"Redis at {REDIS_URL} is not reachable: {err}")
        test.skipTest(f"needs Redis at {REDIS_URL} (CABLEHUB_TEST_REDIS_URL): {err}")


def unique(name: str) -> str:
    """A stream name no other test run uses (Redis keeps streams between
    runs, and pub/sub channels ignore the DB number)."""
    return f"py-{name}-{uuid.uuid4().hex[:12]}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(secret: str, claims: dict) -> str:
    """An HS256 JWT with ``claims``, as the server's --jwt_secret verifies."""
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"


def pubsub_identifier(stream: str) -> str:
    return json.dumps({"channel": "$pubsub", "stream_name": stream}, separators=(",", ":"))


class Subscriber:
    """A WebSocket client of ``server`` (actioncable-v1-json, so frames carry
    no stream offsets), with ``query`` appended to /cable."""

    def __init__(self, server: Server, query: str = ""):
        self.ws = websocket.create_connection(
            f"ws://{server.addr}/cable{query}", timeout=WAIT, subprotocols=["actioncable-v1-json"]
        )
        welcome = json.loads(self.next())
        if welcome.get("type") != "welcome":
            raise AssertionError(f"not a welcome: {welcome}")
        self.sid = welcome.get("sid")

    def send(self, frame: str) -> None:
        self.ws.send(frame)

    def _frame(self) -> Tuple[int, bytes]:
        opcode, frame = self.ws.recv_data_frame(control_frame=False)
        return opcode, frame.data

    def next(self) -> str:
        """The next text frame, skipping pings; fails after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.01))
            opcode, data = self._frame()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise AssertionError(f"closed: {close_code(data)}")
            text = data.decode()
            if not text.startswith('{"type":"ping"'):
                return text

    def subscribe(self, stream: str) -> str:
        """Subscribes to the public stream and returns its identifier."""
        ident = pubsub_identifier(stream)
        self.send(json.dumps({"command": "subscribe", "identifier": ident}))
        want = '{"type":"confirm_subscription","identifier":%s}' % json.dumps(ident)
        got = self.next()
        if got != want:
            raise AssertionError(f"subscribe: got {got}, want {want}")
        return ident

    def expect_close(self) -> Optional[int]:
        """Reads until the server's close frame and returns its close code."""
        deadline = time.monotonic() + WAIT
        while True:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.01))
            opcode, data = self._frame()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return close_code(data)
            text = data.decode()
            if not text.startswith('{"type":"ping"'):
                raise AssertionError(f"frame before close: {text}")

    def close(self) -> None:
        """Closes the connection; also after the server closed it, when
        websocket-client's close handshake would fail or wait."""
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        finally:
            self.ws.shutdown()


def close_code(data: bytes) -> Optional[int]:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def wait_until(what: str, cond, timeout: float = WAIT):
    """Polls ``cond`` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Collector:
    """Iterates a sync watch in a thread, so a test can wait for each
    publication with a deadline: next() returns the next one or raises what
    the iteration raised; done() waits for the iteration to end."""

    _END = object()

    def __init__(self, watch: Any):
        self.watch = watch
        self._items: "queue.Queue[Any]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for pub in self.watch:
                self._items.put(pub)
            self._items.put(self._END)
        except BaseException as err:  # handed to the test
            self._items.put(err)

    def next(self, timeout: float = WAIT) -> Any:
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no publication within {timeout} s") from None
        if item is self._END:
            raise AssertionError("the watch ended")
        if isinstance(item, BaseException):
            raise item
        return item

    def error(self, timeout: float = WAIT) -> BaseException:
        """The error the iteration ended with (failing on a publication or a
        clean end)."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the watch did not fail within {timeout} s") from None
        if not isinstance(item, BaseException):
            raise AssertionError(f"the watch did not fail: got {item!r}")
        return item

    def ended(self, timeout: float = WAIT) -> bool:
        """Whether the iteration ended cleanly (no error) within timeout,
        with nothing more delivered."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            return False
        if item is self._END:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        raise AssertionError(f"expected the end of the watch, got {item!r}")

    def empty(self) -> bool:
        return self._items.empty()


class ServerTestCase(unittest.TestCase):
    """One server for the class (--secret SECRET --public), stopped after
    it, and per test a watchdog and a fresh client (self.client), closed
    after it."""

    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server("--secret", SECRET, "--public")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        from cablehub import Client

        watchdog(self)
        self.client = Client(self.server.grpc_addr, secret=SECRET)
        self.addCleanup(self.client.close)
