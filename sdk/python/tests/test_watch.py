"""Client.watch against the real server: live publications, replay from
an offset, errors, stopping, and resuming after the server restarted."""

from __future__ import annotations

import unittest

import grpc

from cablehub import AuthError, Client, ClosedError, PositionError, StreamPublication, UnavailableError

from helpers import Collector, SECRET, Server, ServerTestCase, WAIT, redis_args, require_redis, unique, wait_until, watchdog

RESTART_WAIT = 20.0  # a resume waits for the restarted server and its backoff


class WatchTest(ServerTestCase):
    """Against one server for the class; self.client is a fresh client."""

    def watch(self, stream: str, **kwargs) -> Collector:
        w = self.client.watch(stream, **kwargs)
        self.addCleanup(w.close)
        return Collector(w)

    def test_receives_live_publications(self) -> None:
        stream, epoch = unique("live"), self.server.epoch
        feed = self.watch(stream)
        self.assertTrue(feed.watch.wait_live(WAIT))
        self.assertIsNone(feed.watch.position)
        self.client.publish(stream, '{"n":1}')
        self.client.publish(stream, "transient text", transient=True)
        self.client.publish_batch([{"stream": stream, "data": '{"n":2}'},
                                   {"stream": unique("elsewhere"), "data": '"not here"'},
                                   {"stream": stream, "data": '{"n":3}', "broadcast_type": "typed"}])
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 1, '{"n":1}'))
        self.assertEqual(feed.next(), StreamPublication(stream, "", 0, "transient text"))
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 2, '{"n":2}'))
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 3, '{"n":3}'))
        self.assertEqual(feed.watch.position, (epoch, 3))

    def test_replays_from_since_then_goes_live(self) -> None:
        stream, epoch = unique("since"), self.server.epoch
        for n in range(1, 4):
            self.client.publish(stream, f'"{n}"')
        feed = self.watch(stream, epoch=epoch, since=1)
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 2, '"2"'))
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 3, '"3"'))
        self.assertTrue(feed.watch.wait_live(WAIT))
        self.client.publish(stream, '"4"')
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 4, '"4"'))

    def test_stale_epoch_ends_with_position_error(self) -> None:
        stream = unique("stale")
        self.client.publish(stream, '"1"')
        feed = self.watch(stream, epoch="not-the-epoch", since=1)
        err = feed.error()
        self.assertIsInstance(err, PositionError)
        self.assertEqual(err.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual((err.epoch, err.offset), (self.server.epoch, 1))
        with self.assertRaises(StopIteration):  # it stays ended
            next(feed.watch)

    def test_wait_live_raises_the_calls_error(self) -> None:
        with Client(self.server.grpc_addr, secret="wrong") as client:
            with client.watch(unique("auth")) as w:
                with self.assertRaises(AuthError):
                    w.wait_live(WAIT)

    def test_close_ends_a_blocked_iteration(self) -> None:
        feed = self.watch(unique("close"))
        self.assertTrue(feed.watch.wait_live(WAIT))
        feed.watch.close()
        self.assertTrue(feed.ended(), "the iteration ends without an error")
        feed.watch.close()  # twice is fine
        with self.assertRaises(ClosedError):
            feed.watch.wait_live(WAIT)

    def watched(self, stream: str) -> bool:
        """Whether the server counts a subscriber of stream (a watch is
        one)."""
        return bool(self.client.list_streams(prefix=stream).streams)

    def test_break_and_with_block_stop_the_call(self) -> None:
        # resume=False: a failure ends the loops below instead of resuming.
        stream = unique("break")
        with self.client.watch(stream, resume=False) as w:
            self.assertTrue(w.wait_live(WAIT))
            self.assertTrue(self.watched(stream))
            self.client.publish(stream, '"a"')
            self.client.publish(stream, '"b"')
            for pub in w:
                self.assertEqual(pub.data, '"a"')
                break
        # Leaving the block cancelled the call: the server drops the
        # watcher, and iterating yields nothing more.
        wait_until("the watch to end on the server", lambda: not self.watched(stream))
        self.assertEqual(list(w), [])

        # A loop over a watch nothing else holds stops it when left.
        other = unique("break-loop")
        self.client.publish(other, '"x"')
        self.client.publish(other, '"y"')
        for pub in self.client.watch(other, epoch=self.server.epoch, since=1, resume=False):
            self.assertEqual(pub.offset, 2)
            break
        wait_until("the loop's watch to end on the server", lambda: not self.watched(other))

    def test_close_ends_a_blocked_iteration_on_the_server_too(self) -> None:
        stream = unique("close-server")
        feed = self.watch(stream)
        self.assertTrue(feed.watch.wait_live(WAIT))
        self.assertTrue(self.watched(stream))
        feed.watch.close()
        self.assertTrue(feed.ended())
        wait_until("the watch to end on the server", lambda: not self.watched(stream))

    def test_client_close_ends_its_watches(self) -> None:
        client = Client(self.server.grpc_addr, secret=SECRET)
        feed = Collector(client.watch(unique("client-close")))
        self.assertTrue(feed.watch.wait_live(WAIT))
        client.close()
        self.assertTrue(feed.ended())


class WatchLostPositionTest(unittest.TestCase):
    """A node on the in-memory broker loses its streams when it restarts:
    the watch's resume finds its epoch gone and ends with PositionError
    giving the new position, instead of skipping what it missed."""

    def setUp(self) -> None:
        watchdog(self)
        self.server = Server("--secret", SECRET, "--public")
        self.addCleanup(self.server.stop)
        self.client = Client(self.server.grpc_addr, secret=SECRET)
        self.addCleanup(self.client.close)

    def test_restart_with_a_new_epoch_ends_with_position_error(self) -> None:
        stream = unique("lost")
        feed = Collector(self.client.watch(stream))
        self.addCleanup(feed.watch.close)
        self.assertTrue(feed.watch.wait_live(WAIT))
        self.client.publish(stream, '"1"')
        self.assertEqual(feed.next().offset, 1)
        old_epoch = self.server.epoch
        self.server.kill()
        self.server.start()
        self.assertNotEqual(self.server.epoch, old_epoch)
        err = feed.error(RESTART_WAIT)
        self.assertIsInstance(err, PositionError, err)
        self.assertEqual((err.epoch, err.offset), ("", 0))  # the new node has no such stream


class WatchRestartTest(unittest.TestCase):
    """Two nodes on Redis (the broker keeps history and epochs, so they
    outlive a node): a watch on node A resumes after A restarts, from the
    last offset it delivered, getting what node B published meanwhile."""

    def setUp(self) -> None:
        watchdog(self)
        require_redis(self)
        args = ("--secret", SECRET, "--public", *redis_args())
        self.a = Server(*args)
        self.addCleanup(self.a.stop)
        self.b = Server(*args)
        self.addCleanup(self.b.stop)
        self.client_a = Client(self.a.grpc_addr, secret=SECRET, retries=10)
        self.addCleanup(self.client_a.close)
        self.client_b = Client(self.b.grpc_addr, secret=SECRET)
        self.addCleanup(self.client_b.close)

    def test_resumes_from_last_offset_after_restart(self) -> None:
        stream = unique("resume")
        w = self.client_a.watch(stream)
        self.addCleanup(w.close)
        feed = Collector(w)
        self.assertTrue(w.wait_live(WAIT))
        self.client_a.publish(stream, '"1"')
        self.client_a.publish(stream, '"2"')
        first = feed.next()
        epoch = first.epoch
        self.assertEqual(first, StreamPublication(stream, epoch, 1, '"1"'))
        self.assertTrue(epoch)
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 2, '"2"'))

        self.a.stop()
        self.client_b.publish(stream, '"3 while A was down"')
        self.a.start()
        self.assertEqual(feed.next(RESTART_WAIT), StreamPublication(stream, epoch, 3, '"3 while A was down"'))
        self.client_a.publish(stream, '"4"')  # retries ride over the restart
        self.assertEqual(feed.next(), StreamPublication(stream, epoch, 4, '"4"'))
        self.assertEqual(w.position, (epoch, 4))

    def test_resume_false_ends_with_unavailable(self) -> None:
        stream = unique("no-resume")
        feed = Collector(self.client_a.watch(stream, resume=False))
        self.addCleanup(feed.watch.close)
        self.assertTrue(feed.watch.wait_live(WAIT))
        self.a.kill()
        self.assertIsInstance(feed.error(), UnavailableError)


if __name__ == "__main__":
    unittest.main()
