"""The client against the real server: what WebSocket subscribers receive
and what errors callers see."""

from __future__ import annotations

import json
import socket
import time
import unittest

import grpc

from cablehub import (AuthError, CablehubError, CablehubTimeoutError, Client, ClosedError, InvalidArgumentError,
                      Presence, PresenceRecord, UnavailableError, api_token)

from helpers import SECRET, Server, ServerTestCase, Subscriber, free_port, jwt, unique, wait_until, watchdog


def broadcast(ident: str, message: str, stream: str, epoch: str, offset: int) -> str:
    """The frame a subscriber gets for a publication kept in history."""
    return '{"identifier":%s,"message":%s,"stream_id":%s,"epoch":%s,"offset":%d}' % (
        json.dumps(ident), message, json.dumps(stream), json.dumps(epoch), offset)


class ClientTest(ServerTestCase):
    """Against one server for the class; self.client is a fresh client."""

    def subscriber(self, query: str = "") -> Subscriber:
        sub = Subscriber(self.server, query)
        self.addCleanup(sub.close)
        return sub

    def assertFails(self, code: grpc.StatusCode, call, *args, kind=CablehubError) -> CablehubError:
        with self.assertRaises(kind) as ctx:
            call(*args)
        self.assertEqual(ctx.exception.code, code, ctx.exception.message)
        self.assertEqual(ctx.exception.code_name, code.name)
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
                err = self.assertFails(grpc.StatusCode.UNAUTHENTICATED, client.publish, "py-auth", '"x"',
                                       kind=AuthError)
                self.assertEqual(err.code.value[0], 16)
                for call, args in ((client.publish_batch, ([{"stream": "py-auth", "data": "x"}],)),
                                   (client.presence, ("py-auth",)),
                                   (client.presence_stats, ("py-auth",)),
                                   (client.history, ("py-auth",)),
                                   (client.list_streams, ()),
                                   (client.info, ()),
                                   (client.disconnect, ("x",))):
                    self.assertFails(grpc.StatusCode.UNAUTHENTICATED, call, *args, kind=AuthError)
                with client.watch("py-auth") as watch:
                    with self.assertRaises(AuthError):
                        next(watch)

    def test_api_secret_is_sent_as_is(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-api-secret")
        with Client(self.server.grpc_addr, api_secret=api_token(SECRET)) as client:
            client.publish("py-api-secret", '"token"', transient=True)
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"token"}' % json.dumps(ident))

    def test_secret_and_api_secret_both_work(self) -> None:
        stream = unique("secrets")
        for kwargs in ({"secret": SECRET}, {"api_secret": api_token(SECRET)}):
            with Client(self.server.grpc_addr, **kwargs) as client:
                client.publish(stream, '"x"')
                self.assertEqual(client.presence(stream).total, 0)

    def test_both_secrets_are_refused(self) -> None:
        with self.assertRaises(ValueError) as ctx:
            Client(self.server.grpc_addr, secret=SECRET, api_secret=api_token(SECRET))
        self.assertEqual(str(ctx.exception), "give secret or api_secret, not both")

    def test_http_address(self) -> None:
        sub = self.subscriber()
        ident = sub.subscribe("py-http")
        for address in ("http://" + self.server.grpc_addr, "http://%s/" % self.server.grpc_addr):
            with Client(address, secret=SECRET) as client:
                client.publish("py-http", '"plain"', transient=True)
            self.assertEqual(sub.next(), '{"identifier":%s,"message":"plain"}' % json.dumps(ident))

    def test_bad_addresses_are_refused(self) -> None:
        for address in ("ftp://127.0.0.1:1", "grpc://127.0.0.1:1", "127.0.0.1:1/api", "http://127.0.0.1:1/api",
                        "127.0.0.1", "", "127.0.0.1:port"):
            with self.assertRaises(ValueError, msg=address):
                Client(address, secret=SECRET)

    def test_empty_stream_is_invalid_argument(self) -> None:
        for call in (self.client.presence, self.client.presence_stats, self.client.history):
            self.assertFails(grpc.StatusCode.INVALID_ARGUMENT, call, "", kind=InvalidArgumentError)
        self.assertFails(grpc.StatusCode.INVALID_ARGUMENT, self.client.publish, "", '"x"',
                         kind=InvalidArgumentError)
        with self.client.watch("") as watch:
            with self.assertRaises(InvalidArgumentError):
                next(watch)

    def test_unreachable_server_is_unavailable(self) -> None:
        with Client(f"127.0.0.1:{free_port()}", secret=SECRET, timeout=2.0) as client:
            self.assertFails(grpc.StatusCode.UNAVAILABLE, client.publish, "py-none", '"x"', kind=UnavailableError)
            self.assertFails(grpc.StatusCode.UNAVAILABLE, client.info, kind=UnavailableError)

    def test_timeout_is_each_calls_deadline(self) -> None:
        # A listener that accepts connections but never speaks HTTP/2.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(8)
            with Client("%s:%d" % mute.getsockname(), secret=SECRET, timeout=0.3) as client:
                started = time.monotonic()
                self.assertFails(grpc.StatusCode.DEADLINE_EXCEEDED, client.presence, "py-mute",
                                 kind=CablehubTimeoutError)
                self.assertLess(time.monotonic() - started, 3.0)

    def test_closed_client_refuses_calls(self) -> None:
        with Client(self.server.grpc_addr, secret=SECRET) as client:
            client.presence("py-closed")
        client.close()  # twice is fine
        self.assertTrue(client.closed)
        self.assert_closed(client)

    def test_closed_client_sends_nothing(self) -> None:
        # Nothing listens here: a call that tried would fail UNAVAILABLE.
        client = Client(f"127.0.0.1:{free_port()}", secret=SECRET, retries=3)
        client.close()
        self.assert_closed(client)

    def assert_closed(self, client: Client) -> None:
        calls = ((client.publish, ("py-closed", '"x"')),
                 (client.publish_batch, ([{"stream": "py-closed", "data": "x"}],)),
                 (client.presence, ("py-closed",)),
                 (client.presence_stats, ("py-closed",)),
                 (client.history, ("py-closed",)),
                 (client.list_streams, ()),
                 (client.info, ()),
                 (client.disconnect, ("x",)),
                 (client.watch, ("py-closed",)))
        for call, args in calls:
            started = time.monotonic()
            err = self.assertFails(grpc.StatusCode.CANCELLED, call, *args, kind=ClosedError)
            self.assertEqual(err.message, "client is closed")
            self.assertIsInstance(err, CablehubError)
            self.assertLess(time.monotonic() - started, 0.5, call.__name__)


if __name__ == "__main__":
    unittest.main()
