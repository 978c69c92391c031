"""cablehub.aio.Client against the real server: every call as a
coroutine, watch as an async iterator, the same errors as the sync
client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import unittest

import grpc

from cablehub import (AuthError, CablehubTimeoutError, ClosedError, History, HistoryPublication,
                      InvalidArgumentError, PositionError, Presence, PresenceRecord, PresenceStats, StreamInfo,
                      StreamPublication, Streams, UnavailableError, api_token)
from cablehub.aio import AsyncClient, Client

from helpers import SECRET, WAIT, Server, Subscriber, free_port, jwt, redis_args, require_redis, unique, watchdog


async def anext_within(watch, timeout: float = WAIT):
    """The watch's next publication; fails after timeout (which also stops
    the watch, as cancelling its iteration does)."""
    try:
        return await asyncio.wait_for(watch.__anext__(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no publication within {timeout} s") from None


async def apoll(what: str, cond, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        got = await cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class AioTest(unittest.IsolatedAsyncioTestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server("--secret", SECRET, "--public")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    async def asyncSetUp(self) -> None:
        watchdog(self)
        self.client = Client(self.server.grpc_addr, secret=SECRET)

    async def asyncTearDown(self) -> None:
        await self.client.close()

    def subscriber(self, query: str = "") -> Subscriber:
        sub = Subscriber(self.server, query)
        self.addCleanup(sub.close)
        return sub

    async def test_publish_and_batch_reach_subscriber(self) -> None:
        stream = unique("aio-publish")
        sub = self.subscriber()
        ident = json.dumps(sub.subscribe(stream))
        await self.client.publish(stream, '{"n":1}', transient=True, broadcast_type="note")
        self.assertEqual(sub.next(), '{"type":"note","identifier":%s,"message":{"n":1}}' % ident)
        await self.client.publish_batch([{"stream": stream, "data": '"a"', "transient": True},
                                         {"stream": stream, "data": '"b"', "transient": True}])
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"a"}' % ident)
        self.assertEqual(sub.next(), '{"identifier":%s,"message":"b"}' % ident)

    async def test_presence_and_stats(self) -> None:
        stream = unique("aio-presence")
        self.assertEqual(await self.client.presence(stream), Presence(total=0, records=[]))
        for user in ("u1", "u1", "u2"):
            sub = self.subscriber()
            ident = sub.subscribe(stream)
            sub.send(json.dumps({"command": "join", "identifier": ident,
                                 "presence": {"id": user, "info": {"name": user}}}))

        async def three():
            stats = await self.client.presence_stats(stream)
            return stats if stats.sessions == 3 else None

        self.assertEqual(await apoll("three sessions", three), PresenceStats(users=2, sessions=3))
        presence = await self.client.presence(stream)
        self.assertEqual(presence.records, [PresenceRecord("u1", {"name": "u1"}), PresenceRecord("u2", {"name": "u2"})])

    async def test_history_and_position_error(self) -> None:
        stream, epoch = unique("aio-history"), self.server.epoch
        await self.client.publish(stream, '"1"', idempotency_key="k")
        await self.client.publish(stream, '"1"', idempotency_key="k")  # the same publication
        await self.client.publish(stream, '"2"')
        pubs = [HistoryPublication(1, '"1"'), HistoryPublication(2, '"2"')]
        self.assertEqual(await self.client.history(stream), History(epoch, 2, pubs))
        self.assertEqual(await self.client.history(stream, limit=1, epoch=epoch, since=0), History(epoch, 2, pubs[:1]))
        with self.assertRaises(PositionError) as ctx:
            await self.client.history(stream, epoch="stale", since=1)
        self.assertEqual((ctx.exception.epoch, ctx.exception.offset), (epoch, 2))

    async def test_list_streams_and_info(self) -> None:
        prefix = unique("aio-list")
        self.subscriber().subscribe(prefix + "-x")
        self.assertEqual(await self.client.list_streams(prefix), Streams(streams=[StreamInfo(prefix + "-x", 1)]))
        info = await self.client.info()
        self.assertEqual(len(info.nodes), 1)
        self.assertGreaterEqual(info.nodes[0].connections, 1)
        self.assertEqual(info.unavailable_nodes, [])

    async def test_disconnect(self) -> None:
        target = self.subscriber("?jid=" + jwt(SECRET, {"ext": '{"user_id":"aio"}'}))
        await self.client.disconnect('{"user_id":"aio"}', reconnect=True)
        self.assertEqual(target.next(), '{"type":"disconnect","reason":"remote","reconnect":true}')

    async def test_watch_live_and_replay(self) -> None:
        stream, epoch = unique("aio-watch"), self.server.epoch
        async with self.client.watch(stream) as w:
            self.assertTrue(await w.wait_live(WAIT))
            await self.client.publish(stream, '"1"')
            await self.client.publish(stream, '"t"', transient=True)
            await self.client.publish(stream, '"2"')
            self.assertEqual(await anext_within(w), StreamPublication(stream, epoch, 1, '"1"'))
            self.assertEqual(await anext_within(w), StreamPublication(stream, "", 0, '"t"'))
            self.assertEqual(await anext_within(w), StreamPublication(stream, epoch, 2, '"2"'))
            self.assertEqual(w.position, (epoch, 2))
        got = []
        async for pub in self.client.watch(stream, epoch=epoch, since=1):
            got.append(pub)
            break
        self.assertEqual(got, [StreamPublication(stream, epoch, 2, '"2"')])

    async def test_watch_stale_epoch(self) -> None:
        stream = unique("aio-stale")
        await self.client.publish(stream, '"1"')
        w = self.client.watch(stream, epoch="stale", since=1)
        with self.assertRaises(PositionError) as ctx:
            await anext_within(w)
        self.assertEqual((ctx.exception.epoch, ctx.exception.offset), (self.server.epoch, 1))
        with self.assertRaises(StopAsyncIteration):
            await w.__anext__()

    async def test_cancelling_the_task_stops_the_watch(self) -> None:
        stream = unique("aio-cancel")
        w = self.client.watch(stream)
        self.assertTrue(await w.wait_live(WAIT))
        got = []

        async def consume():
            async for pub in w:
                got.append(pub)

        task = asyncio.ensure_future(consume())
        await self.client.publish(stream, '"1"')

        async def delivered():
            return got

        await apoll("one publication", delivered)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        await self.client.publish(stream, '"2"')
        with self.assertRaises(StopAsyncIteration):  # the watch stopped with its task
            await anext_within(w)
        self.assertEqual([p.data for p in got], ['"1"'])

        async def unwatched():  # the server dropped the watcher
            return not (await self.client.list_streams(prefix=stream)).streams

        await apoll("the watch to end on the server", unwatched)

    async def test_aclose_and_client_close_end_iterations(self) -> None:
        w = self.client.watch(unique("aio-aclose"))
        self.assertTrue(await w.wait_live(WAIT))
        pending = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0.05)
        await w.aclose()
        with self.assertRaises(StopAsyncIteration):
            await asyncio.wait_for(pending, WAIT)

        client = Client(self.server.grpc_addr, secret=SECRET)
        w = client.watch(unique("aio-client-close"))
        self.assertTrue(await w.wait_live(WAIT))
        pending = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0.05)
        await client.close()
        with self.assertRaises(StopAsyncIteration):
            await asyncio.wait_for(pending, WAIT)

    async def test_closed_client_raises_closed_error(self) -> None:
        # Nothing listens on this port: a call that tried would fail UNAVAILABLE.
        client = AsyncClient(f"127.0.0.1:{free_port()}", secret=SECRET, retries=3)
        await client.close()
        await client.close()  # twice is fine
        coros = [client.publish("s", "x"), client.publish_batch([{"stream": "s", "data": "x"}]),
                 client.presence("s"), client.presence_stats("s"), client.history("s"),
                 client.list_streams(), client.info(), client.disconnect("x")]
        for coro in coros:
            with self.assertRaises(ClosedError) as ctx:
                await coro
            self.assertEqual(ctx.exception.message, "client is closed")
            self.assertEqual(ctx.exception.code, grpc.StatusCode.CANCELLED)
        with self.assertRaises(ClosedError):
            client.watch("s")

    async def test_typed_errors(self) -> None:
        for kwargs in ({"secret": "wrong"}, {"api_secret": "wrong"}, {}):
            async with Client(self.server.grpc_addr, **kwargs) as client:
                with self.assertRaises(AuthError):
                    await client.info()
                with self.assertRaises(AuthError):
                    await anext_within(client.watch("s"))
                with self.assertRaises(AuthError):
                    await client.watch("s").wait_live(WAIT)
        with self.assertRaises(InvalidArgumentError):
            await self.client.publish("", "x")
        with self.assertRaises(InvalidArgumentError):
            await anext_within(self.client.watch(""))
        async with Client(f"127.0.0.1:{free_port()}", timeout=2) as client:
            with self.assertRaises(UnavailableError):
                await client.presence("s")
        with socket.socket() as mute:  # accepts, never speaks HTTP/2
            mute.bind(("127.0.0.1", 0))
            mute.listen(8)
            async with Client("%s:%d" % mute.getsockname(), timeout=0.3) as client:
                with self.assertRaises(CablehubTimeoutError):
                    await client.presence("s")

    async def test_options(self) -> None:
        with self.assertRaises(ValueError):
            Client(self.server.grpc_addr, secret=SECRET, api_secret="x")
        with self.assertRaises(ValueError):
            Client("ws://" + self.server.grpc_addr)
        for address, kwargs in (("http://" + self.server.grpc_addr, {"secret": SECRET}),
                                (self.server.grpc_addr, {"api_secret": api_token(SECRET)})):
            async with Client(address, **kwargs) as client:
                self.assertEqual((await client.presence_stats(unique("aio-opts"))).users, 0)

    async def test_retries_reach_a_server_that_comes_up(self) -> None:
        port = free_port()
        servers = []
        starter = threading.Timer(0.3, lambda: servers.append(Server("--secret", SECRET, "--public", port=port)))
        self.addCleanup(lambda: [s.stop() for s in servers])
        self.addCleanup(starter.cancel)
        async with Client(f"127.0.0.1:{port}", secret=SECRET, retries=10, timeout=2) as client:
            starter.start()
            stream = unique("aio-retry")
            await client.publish(stream, '"x"')
            self.assertEqual(len((await client.history(stream)).publications), 1)
        await asyncio.get_running_loop().run_in_executor(None, starter.join, 30)


class AioRestartTest(unittest.IsolatedAsyncioTestCase):
    """The asyncio watch resumes after its node restarts (two nodes on
    Redis, as in test_watch.WatchRestartTest)."""

    def setUp(self) -> None:
        watchdog(self)
        require_redis(self)
        args = ("--secret", SECRET, "--public", *redis_args())
        self.a = Server(*args)
        self.addCleanup(self.a.stop)
        self.b = Server(*args)
        self.addCleanup(self.b.stop)

    async def test_resumes_from_last_offset_after_restart(self) -> None:
        stream = unique("aio-resume")
        loop = asyncio.get_running_loop()
        async with Client(self.a.grpc_addr, secret=SECRET, retries=10) as a, \
                Client(self.b.grpc_addr, secret=SECRET) as b:
            w = a.watch(stream)
            self.assertTrue(await w.wait_live(WAIT))
            await a.publish(stream, '"1"')
            first = await anext_within(w)
            self.assertEqual((first.offset, first.data), (1, '"1"'))
            await loop.run_in_executor(None, self.a.stop)
            await b.publish(stream, '"2 while A was down"')
            await loop.run_in_executor(None, self.a.start)
            self.assertEqual(await anext_within(w, 20), StreamPublication(stream, first.epoch, 2, '"2 while A was down"'))
            await a.publish(stream, '"3"')
            self.assertEqual(await anext_within(w), StreamPublication(stream, first.epoch, 3, '"3"'))
            w.close()


if __name__ == "__main__":
    unittest.main()
