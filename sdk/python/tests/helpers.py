"""Test helpers: the built cablehub binary on a random port, a WebSocket
subscriber speaking the Action Cable protocol, and HS256 JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from typing import List, Optional, Tuple

import websocket

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("CABLEHUB_BIN") or os.path.join(REPO, "bin", "cablehub")
SECRET = "py-sdk-secret"
WAIT = 5.0  # seconds any single expectation may take

_READY = re.compile(r"Handle health requests at https?://([^/\s\"]+)/")
_GRPC = re.compile(r"Handle gRPC API requests at ([^\s\"]+)")
_EPOCH = re.compile(r"broker \(epoch: ([^,\s]+)")


class Server:
    """cablehub on 127.0.0.1 port 0; ``addr`` is the main listener
    (WebSockets), ``grpc_addr`` the gRPC API's address and ``epoch`` the
    broker's epoch, which broadcast frames carry."""

    def __init__(self, *args: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYCABLE_") and k != "PORT"}
        self.proc = subprocess.Popen(
            [BINARY, "--host", "127.0.0.1", "--port", "0", *args],
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
            self.epoch = self._wait_for(_EPOCH)
        except Exception:
            self.stop()
            raise

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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


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
