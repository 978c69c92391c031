"""The v2 reads (presence_stats, history, list_streams, info), the
idempotency key and retries, against the real server."""

from __future__ import annotations

import json
import threading
import unittest

import grpc

from cablehub import (Client, History, HistoryPublication, InvalidArgumentError, NodeInfo, PositionError,
                      PresenceStats, StreamInfo, Streams)

from helpers import SECRET, Server, ServerTestCase, Subscriber, free_port, unique, wait_until, watchdog


class CallsTest(ServerTestCase):
    """Against one server for the class; self.client is a fresh client."""

    def subscriber(self) -> Subscriber:
        sub = Subscriber(self.server)
        self.addCleanup(sub.close)
        return sub

    def test_presence_stats_counts_users_and_sessions(self) -> None:
        stream = unique("stats")
        self.assertEqual(self.client.presence_stats(stream), PresenceStats(users=0, sessions=0))
        for user in ("u1", "u1", "u2"):  # u1 joins from two sessions
            sub = self.subscriber()
            ident = sub.subscribe(stream)
            sub.send(json.dumps({"command": "join", "identifier": ident, "presence": {"id": user}}))
        got = wait_until("three sessions", lambda: (lambda s: s if s.sessions == 3 else None)(
            self.client.presence_stats(stream)))
        self.assertEqual(got, PresenceStats(users=2, sessions=3))
        self.assertEqual(self.client.presence(stream).total, 2)

    def test_history_reads_and_replays(self) -> None:
        stream, epoch = unique("history"), self.server.epoch
        self.assertEqual(self.client.history(stream), History(epoch="", offset=0, publications=[]))
        self.client.publish(stream, '{"n":1}')
        self.client.publish(stream, "not json", transient=True)  # no offset, not kept
        self.client.publish_batch([{"stream": stream, "data": '{"n":2}'}, {"stream": stream, "data": '{"n":3}'}])
        pubs = [HistoryPublication(1, '{"n":1}'), HistoryPublication(2, '{"n":2}'), HistoryPublication(3, '{"n":3}')]
        self.assertEqual(self.client.history(stream), History(epoch=epoch, offset=3, publications=pubs))
        # limit without since: the latest ones; with since: the first after it.
        self.assertEqual(self.client.history(stream, limit=2).publications, pubs[1:])
        self.assertEqual(self.client.history(stream, epoch=epoch, since=1).publications, pubs[1:])
        self.assertEqual(self.client.history(stream, limit=1, epoch=epoch, since=1),
                         History(epoch=epoch, offset=3, publications=pubs[1:2]))
        self.assertEqual(self.client.history(stream, epoch=epoch, since=3).publications, [])

    def test_history_from_a_stale_epoch_is_a_position_error(self) -> None:
        stream = unique("stale")
        for n in range(2):
            self.client.publish(stream, str(n))
        with self.assertRaises(PositionError) as ctx:
            self.client.history(stream, epoch="not-the-epoch", since=1)
        err = ctx.exception
        self.assertEqual(err.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual((err.epoch, err.offset), (self.server.epoch, 2))
        self.assertTrue(err.message)

    def test_list_streams_with_subscribers(self) -> None:
        prefix = unique("list")
        for stream in (f"{prefix}-b", f"{prefix}-a", f"{prefix}-a"):
            self.subscriber().subscribe(stream)
        self.client.publish(f"{prefix}-nobody", '"x"')  # no subscriber: not listed
        want = Streams(streams=[StreamInfo(f"{prefix}-a", 2), StreamInfo(f"{prefix}-b", 1)])
        self.assertEqual(self.client.list_streams(prefix=prefix), want)
        self.assertEqual(self.client.list_streams(prefix, limit=1),
                         Streams(streams=[StreamInfo(f"{prefix}-a", 2)], truncated=True))
        everything = self.client.list_streams(limit=1000)
        self.assertIn(StreamInfo(f"{prefix}-b", 1), everything.streams)
        self.assertEqual(everything.streams, sorted(everything.streams, key=lambda s: s.name))
        with self.assertRaises(InvalidArgumentError):
            self.client.list_streams(limit=1001)

    def test_info_describes_the_node(self) -> None:
        stream = unique("info")
        sub = self.subscriber()
        sub.subscribe(stream)
        before = self.client.info().nodes[0]
        self.client.publish(unique("info-nobody"), '"x"')  # accepted, reaches no one
        self.client.publish(stream, '"y"')
        self.assertIn('"message":"y"', sub.next())
        info = wait_until("the counters", lambda: (lambda i: i if (
            i.nodes[0].published_total >= before.published_total + 2
            and i.nodes[0].deliveries_total >= before.deliveries_total + 1) else None)(self.client.info()))
        self.assertEqual(info.unavailable_nodes, [])
        self.assertEqual(len(info.nodes), 1, info)
        node = info.nodes[0]
        self.assertIsInstance(node, NodeInfo)
        self.assertTrue(node.id)
        self.assertIn(f"Starting Cablehub {node.version} ", self.server.logs())
        self.assertGreaterEqual(node.connections, 1)
        self.assertGreaterEqual(node.subscriptions, 1)
        self.assertGreaterEqual(node.streams, 1)
        self.assertGreaterEqual(node.uptime_seconds, 0)
        self.assertEqual(node.id, before.id)
        self.assertEqual(node.published_total - before.published_total, 2)
        self.assertEqual(node.deliveries_total - before.deliveries_total, 1)
        self.assertIsInstance(node.rpc_calls_total, int)
        self.assertEqual(node.rpc_calls_total, 0)  # --public: no RPC back end to call

    def test_idempotency_key_keeps_one_publication(self) -> None:
        stream = unique("idem")
        for _ in range(3):
            self.client.publish(stream, '"once"', idempotency_key="key-1")
        self.client.publish_batch([{"stream": stream, "data": '"once"', "idempotency_key": "key-1"},
                                   {"stream": stream, "data": '"other"', "idempotency_key": "key-2"}])
        self.assertEqual(self.client.history(stream).publications,
                         [HistoryPublication(1, '"once"'), HistoryPublication(2, '"other"')])
        # The key is per stream.
        other = unique("idem-other")
        self.client.publish(other, '"once"', idempotency_key="key-1")
        self.assertEqual(len(self.client.history(other).publications), 1)

    def test_retries_reach_a_server_that_comes_up(self) -> None:
        port = free_port()
        servers = []
        starter = threading.Timer(0.3, lambda: servers.append(Server("--secret", SECRET, "--public", port=port)))
        self.addCleanup(lambda: [s.stop() for s in servers])
        self.addCleanup(starter.cancel)
        with Client(f"127.0.0.1:{port}", secret=SECRET, retries=10, timeout=2) as client:
            starter.start()
            stream = unique("retry")
            client.publish(stream, '"after retries"')
            self.assertEqual(client.history(stream).publications, [HistoryPublication(1, '"after retries"')])
        starter.join(30)


if __name__ == "__main__":
    unittest.main()
