"""Parts of the client that need no server."""

from __future__ import annotations

import itertools
import unittest

import grpc
from google.protobuf import any_pb2, struct_pb2

from cablehub import (AuthError, CablehubError, CablehubTimeoutError, Client, InvalidArgumentError, PositionError,
                      UnavailableError, api_token, value_to_python)
from cablehub import _core
from cablehub.errors import make_error, stream_position_from_details
from cablehub.v1 import cable_pb2


def status_bytes(code: int, message: str, *details: any_pb2.Any) -> bytes:
    """A serialized google.rpc.Status, written by hand as a server's
    grpc-status-details-bin trailer carries it."""
    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    out = _varint(1 << 3) + _varint(code) + field(2, message.encode())
    for d in details:
        out += field(3, d.SerializeToString())
    return out


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | 0x80 if n else b])
        if not n:
            return out


def position_any(epoch: str, offset: int) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(cable_pb2.StreamPosition(epoch=epoch, offset=offset))
    return detail


class ValuesTest(unittest.TestCase):
    def test_api_token_matches_server_derivation(self) -> None:
        # The token the server logs and the Go e2e tests use for "test-secret".
        self.assertEqual(api_token("test-secret"),
                         "598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580")

    def test_value_to_python(self) -> None:
        v = struct_pb2.Value()
        v.struct_value.update({"s": "x", "n": 3, "b": False, "z": None, "l": [1, "two", {"k": []}], "o": {}})
        self.assertEqual(value_to_python(v),
                         {"s": "x", "n": 3.0, "b": False, "z": None, "l": [1.0, "two", {"k": []}], "o": {}})
        self.assertIsNone(value_to_python(struct_pb2.Value()))
        self.assertEqual(value_to_python(struct_pb2.Value(string_value="")), "")

    def test_bad_publications_fail_before_sending(self) -> None:
        # Nothing listens on port 1; a request never leaves the client.
        with Client("127.0.0.1:1") as client:
            with self.assertRaises(TypeError):
                client.publish("s", {"not": "text"})
            with self.assertRaises(TypeError):
                client.publish_batch([{"stream": "s", "data": "x", "exclude": "typo"}])
            with self.assertRaises(TypeError):
                client.publish_batch([{"stream": "s"}])
            with self.assertRaises(TypeError):
                client.publish_batch(["s"])
            for bad in (-1, "1", 1.5, True):
                with self.assertRaises(ValueError):
                    client.history("s", since=bad)
                with self.assertRaises(ValueError):
                    client.watch("s", since=bad)
            with self.assertRaises(ValueError):
                client.history("s", limit=-1)
            with self.assertRaises(ValueError):
                client.list_streams(limit=-1)

    def test_addresses(self) -> None:
        ok = {
            "127.0.0.1:8080": ("127.0.0.1:8080", None),
            "localhost:8080": ("localhost:8080", None),
            "[::1]:8080": ("[::1]:8080", None),
            "http://127.0.0.1:8080": ("127.0.0.1:8080", False),
            "http://127.0.0.1:8080/": ("127.0.0.1:8080", False),
            "HTTP://example.com": ("example.com:80", False),
            "https://example.com": ("example.com:443", True),
            "https://[::1]:9443": ("[::1]:9443", True),
        }
        for address, want in ok.items():
            self.assertEqual(_core.parse_address(address), want, address)
        for address in ("", "127.0.0.1", "ws://h:1", "unix:///tmp/s", "dns:///h:1", "h:1/path", "http://h:1/api",
                        "https://h:1?x=1", "http://u:p@h:1", "h:port", "http://:80"):
            with self.assertRaises(ValueError, msg=address):
                _core.parse_address(address)

    def test_options(self) -> None:
        def settings(address="h:1", secret=None, api_secret=None, timeout=5.0, retries=0,
                     root_certificates=None, credentials=None):
            return _core.settings(address, secret, api_secret, timeout, retries, root_certificates, credentials)

        self.assertEqual(settings().metadata, ())
        self.assertEqual(settings(secret="s").metadata, (("authorization", "Bearer " + api_token("s")),))
        self.assertEqual(settings(api_secret="t").metadata, (("authorization", "Bearer t"),))
        with self.assertRaisesRegex(ValueError, "^give secret or api_secret, not both$"):
            settings(secret="s", api_secret="t")
        self.assertIsNone(settings().credentials)
        self.assertIsNone(settings("http://h:1").credentials)
        self.assertIsNotNone(settings("https://h:1").credentials)
        self.assertIsNotNone(settings(root_certificates=True).credentials)
        with self.assertRaises(ValueError):
            settings("http://h:1", root_certificates=True)
        for bad in ({"timeout": 0}, {"timeout": -1}, {"retries": -1}, {"retries": 1.5}, {"retries": True}):
            with self.assertRaises(ValueError, msg=bad):
                settings(**bad)
        self.assertIsNone(settings(timeout=None).timeout)

    def test_retries_give_publications_idempotency_keys(self) -> None:
        pubs = _core.publications([{"stream": "s", "data": "a"}, {"stream": "s", "data": "b", "idempotency_key": "mine"}], 2)
        self.assertEqual(len(pubs[0].idempotency_key), 36)  # a UUID
        self.assertEqual(pubs[1].idempotency_key, "mine")
        pubs = _core.publications([{"stream": "s", "data": "a"}], 0)
        self.assertEqual(pubs[0].idempotency_key, "")
        # The key is the publication's own field, not meta.
        pub = _core.publication("s", "d", idempotency_key="k")
        self.assertEqual(pub.idempotency_key, "k")
        self.assertFalse(pub.HasField("meta"))

    def test_backoff(self) -> None:
        self.assertEqual(list(itertools.islice(_core.backoff(), 8)), [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])

    def test_errors_by_code(self) -> None:
        cases = {
            grpc.StatusCode.UNAUTHENTICATED: AuthError,
            grpc.StatusCode.PERMISSION_DENIED: AuthError,
            grpc.StatusCode.UNAVAILABLE: UnavailableError,
            grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
            grpc.StatusCode.DEADLINE_EXCEEDED: CablehubTimeoutError,
            grpc.StatusCode.FAILED_PRECONDITION: PositionError,
            grpc.StatusCode.RESOURCE_EXHAUSTED: CablehubError,
            grpc.StatusCode.UNIMPLEMENTED: CablehubError,
        }
        for code, kind in cases.items():
            err = make_error(code, "m")
            self.assertIs(type(err), kind, code)
            self.assertEqual((err.code, err.code_name, err.message, str(err)), (code, code.name, "m", f"{code.name}: m"))

    def test_position_from_status_details(self) -> None:
        other = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\x0a\x01x")
        raw = status_bytes(9, "since is from another epoch", other, position_any("ep-1", 42))
        self.assertEqual(stream_position_from_details(raw), ("ep-1", 42))
        err = make_error(grpc.StatusCode.FAILED_PRECONDITION, "m", [("other", "x"), ("grpc-status-details-bin", raw)])
        self.assertEqual((err.epoch, err.offset), ("ep-1", 42))
        # An unknown stream: epoch "" and offset 0, encoded as nothing.
        err = make_error(grpc.StatusCode.FAILED_PRECONDITION, "m",
                         [("grpc-status-details-bin", status_bytes(9, "m", position_any("", 0)))])
        self.assertEqual((err.epoch, err.offset), ("", 0))
        # No detail, or a broken trailer: no position.
        for trailers in (None, [], [("grpc-status-details-bin", status_bytes(9, "m", other))],
                         [("grpc-status-details-bin", b"\x1a\xff")]):
            err = make_error(grpc.StatusCode.FAILED_PRECONDITION, "m", trailers)
            self.assertIsInstance(err, PositionError)
            self.assertEqual((err.epoch, err.offset), (None, None))

    def test_watch_position(self) -> None:
        state = _core.WatchState("s", "", None, resume=True)
        self.assertFalse(state.request().HasField("since"))
        state.delivered(cable_pb2.StreamPublication(stream="s", epoch="e", offset=7, data="x"))
        state.delivered(cable_pb2.StreamPublication(stream="s", epoch="", offset=0, data="transient"))
        req = state.request()
        self.assertEqual((req.stream, req.epoch, req.since), ("s", "e", 7))
        self.assertTrue(state.resumes_after(grpc.StatusCode.UNAVAILABLE))
        self.assertFalse(state.resumes_after(grpc.StatusCode.FAILED_PRECONDITION))
        self.assertFalse(_core.WatchState("s", "", None, resume=False).resumes_after(grpc.StatusCode.UNAVAILABLE))
        req = _core.WatchState("s", "e", 0, resume=True).request()
        self.assertTrue(req.HasField("since"))
        self.assertEqual(req.since, 0)


if __name__ == "__main__":
    unittest.main()
