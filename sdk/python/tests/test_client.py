"""The client against the real server: what WebSocket subscribers receive
and what errors callers see."""

from __future__ import annotations

import json
import socket
import time
import unittest

import grpc

from cablehub import CablehubError, Client, Presence, PresenceRecord, api_token

from helpers import SECRET, Server, Subscriber, jwt, wait_until


def broadcast(ident: str, message: str, stream: str, epoch: str, offset: int) -> str:
    """The frame a subscriber gets for a publication kept in history."""
    return '{"identifier":%s,"message":%s,"stream_id":%s,"epoch":%s,"offset":%d}' % (
        json.dumps(ident), message, json.dumps(stream), json.dumps(epoch), offset)


class ClientTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server("--secret", SECRET, "--public")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.client = Client(self.server.grpc_addr, secret=SECRET)
        self.addCleanup(self.client.close)

    def subscriber(self, query: str = "") -> Subscriber:
        sub = Subscriber(self.server, query)
        self.addCleanup(sub.close)
        return sub

    def assertFails(self, code: grpc.StatusCode, call, *args) -> CablehubError:
        with self.assertRaises(CablehubError) as ctx:
            call(*args)
        self.assertEqual(ctx.exception.code, code, ctx.exception.message)
        return ctx.exception

    def test_publish_reaches_subscriber(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-publish")
        self.client.publish("py-publish", '{"text":"hi"}')
        self.assertEqual(sub.next(), broadcast(ident, '{"text":"hi"}', "py-publish", self.server.epoch, 1))
        # Text that is not JSON arrives as a JSON string.
        self.client.publish("py-publish", "plain words")
        self.assertEqual(sub.next(), broadcast(ident, '"plain words"', "py-publish", self.server.epoch, 2))

    def test_publish_options(self) -> None:
        author, reader = self.subscriber(), self.subscriber()
        ident = author.subscribe("py-options")
        reader.subscribe("py-options")
        self.client.publish("py-options", '{"n":1}', exclude_socket=author.sid, transient=True,
                            broadcast_type="note")
        want = '{"type":"note","identifier":%s,"message":{"n":1}}' % json.dumps(ident)
        self.assertEqual(reader.next(), want)
        # The author was excluded: its next frame is the next publication.
        self.client.publish("py-options", '{"n":2}', transient=True)
        self.assertEqual(author.next(), '{"identifier":%s,"message":{"n":2}}' % json.dumps(ident))

    def test_publish_batch_in_order(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-batch")
        other = sub.subscribe("py-batch-other")
        self.client.publish_batch([
            {"stream": "py-batch", "data": '{"seq":1}'},
            {"stream": "py-batch-other", "data": '{"seq":2}', "transient": True},
            {"stream": "py-batch", "data": '{"seq":3}', "broadcast_type": "last"},
        ])
        epoch = self.server.epoch
        self.assertEqual(sub.next(), broadcast(ident, '{"seq":1}', "py-batch", epoch, 1))
        self.assertEqual(sub.next(), '{"identifier":%s,"message":{"seq":2}}' % json.dumps(other))
        self.assertEqual(sub.next(), '{"type":"last","identifier":%s,"message":{"seq":3},'
                         '"stream_id":"py-batch","epoch":%s,"offset":2}' % (json.dumps(ident), json.dumps(epoch)))

    def test_invalid_batch_delivers_nothing(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-bad-batch")
        err = self.assertFails(grpc.StatusCode.INVALID_ARGUMENT, self.client.publish_batch, [
            {"stream": "py-bad-batch", "data": '"first"'},
            {"stream": "", "data": '"second"'},
        ])
        self.assertTrue(err.message, "the status carries a message")
        self.client.publish("py-bad-batch", '"after"', transient=True)
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"after"}' % json.dumps(ident))

    def test_idempotency_key_delivers_once(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-idem")
        for _ in range(2):
            self.client.publish("py-idem", '"once"', transient=True, idempotency_key="k-1")
        self.client.publish("py-idem", '"next"', transient=True)
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"once"}' % json.dumps(ident))
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"next"}' % json.dumps(ident))

    def test_presence_reads_joined_client(self) -> None:
        self.assertEqual(self.client.presence("py-presence"), Presence(total=0, records=[]))
        sub = self.subscriber()
        ident = sub.subscribe("py-presence")
        info = {"name": "Ann", "tags": ["a", 2, True, None], "n": 1.5}
        sub.send(json.dumps({"command": "join", "identifier": ident, "presence": {"id": "u1", "info": info}}))
        plain = self.subscriber()
        plain.send(json.dumps({"command": "subscribe", "identifier": ident,
                               "presence": {"id": "u2"}}))
        got = wait_until("two present", lambda: (lambda p: p if p.total == 2 else None)(
            self.client.presence("py-presence")))
        self.assertEqual(got.records, [PresenceRecord(id="u1", info=info), PresenceRecord(id="u2", info=None)])
        self.assertIsInstance(got.records[0].info["tags"][1], float)
        self.assertFalse(got.truncated)

    def test_disconnect_closes_identified_client(self) -> None:
        target = self.subscriber("?jid=" + jwt(SECRET, {"ext": '{"user_id":42}'}))
        bystander = self.subscriber("?jid=" + jwt(SECRET, {"ext": '{"user_id":7}'}))
        self.client.disconnect('{"user_id":42}')
        self.assertEqual(target.next(), '{"type":"disconnect","reason":"remote","reconnect":false}')
        self.assertEqual(target.expect_close(), 1000)
        # The bystander was not matched: its first frame is from this call.
        self.client.disconnect('{"user_id":7}', reconnect=True)
        self.assertEqual(bystander.next(), '{"type":"disconnect","reason":"remote","reconnect":true}')
        self.assertEqual(bystander.expect_close(), 1000)

    def test_wrong_secret_is_unauthenticated(self) -> None:
        for client in (Client(self.server.grpc_addr, secret="wrong"),
                       Client(self.server.grpc_addr, api_secret="wrong"),
                       Client(self.server.grpc_addr)):
            with client:
                err = self.assertFails(grpc.StatusCode.UNAUTHENTICATED, client.publish, "py-auth", '"x"')
                self.assertEqual(err.code.value[0], 16)
                self.assertFails(grpc.StatusCode.UNAUTHENTICATED, client.presence, "py-auth")
                self.assertFails(grpc.StatusCode.UNAUTHENTICATED, client.disconnect, "x")

    def test_api_secret_is_sent_as_is(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-api-secret")
        with Client(self.server.grpc_addr, api_secret=api_token(SECRET)) as client:
            client.publish("py-api-secret", '"token"', transient=True)
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"token"}' % json.dumps(ident))

    def test_empty_stream_is_invalid_argument(self) -> None:
        self.assertFails(grpc.StatusCode.INVALID_ARGUMENT, self.client.publish, "", '"x"')

    def test_unreachable_server_is_unavailable(self) -> None:
        with socket.socket() as s:  # a port that nothing listens on once closed
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with Client(f"127.0.0.1:{port}", secret=SECRET, timeout=2.0) as client:
            self.assertFails(grpc.StatusCode.UNAVAILABLE, client.publish, "py-none", '"x"')

    def test_timeout_is_each_calls_deadline(self) -> None:
        # A listener that accepts connections but never speaks HTTP/2.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(8)
            with Client("%s:%d" % mute.getsockname(), secret=SECRET, timeout=0.3) as client:
                started = time.monotonic()
                self.assertFails(grpc.StatusCode.DEADLINE_EXCEEDED, client.presence, "py-mute")
                self.assertLess(time.monotonic() - started, 3.0)

    def test_closed_client_refuses_calls(self) -> None:
        with Client(self.server.grpc_addr, secret=SECRET) as client:
            client.presence("py-closed")
        with self.assertRaises(ValueError):
            client.presence("py-closed")


if __name__ == "__main__":
    unittest.main()
