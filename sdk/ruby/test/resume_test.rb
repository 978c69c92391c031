# frozen_string_literal: true

require "test_helper"

# A watch that outlives its server: two nodes on a Redis of the test's own
# (--broker redis --pubsub redis, so history survives a node's restart).
# The watched node is stopped, the other takes a publication meanwhile, and
# the watch, resumed once the node is back, replays it from its last offset.
class ResumeTest < Minitest::Test
  include TestHelper

  def setup
    @threads = []
  end

  # Two nodes on a Redis of the test's own: @watched on a fixed port, so
  # it comes back on the watch's address after a restart, and @other.
  def start_redis_nodes
    skip "redis-server is not on PATH" unless TestRedis.available?

    @redis = TestRedis.new
    args = ["--secret", SECRET, "--public", "--broker", "redis", "--pubsub", "redis", "--redis_url", @redis.url]
    @watched = TestServer.start(*args, port: TestServer.free_port)
    @other = TestServer.start(*args)
    @watcher = Cablehub::Client.new(@watched.grpc_addr, secret: SECRET)
    @publisher = Cablehub::Client.new(@other.grpc_addr, secret: SECRET)
  end

  def teardown
    @watcher&.close
    @publisher&.close
    @threads.each { |t| t.join(5) }
    @watched&.stop
    @other&.stop
    @redis&.stop
  end

  # Watches stream on the watched node in a thread: publications go to the
  # returned Queue, and so does the error that ends the watch; each time
  # the watch is live, true goes to the live Queue.
  def watch(stream, **options)
    got = Queue.new
    live = Queue.new
    @threads << Thread.new do
      @watcher.watch(stream, on_live: -> { live << true }, **options) { |p| got << p }
    rescue Cablehub::Error => e
      got << e
    end
    [got, live]
  end

  def pop(queue, what, timeout: 15)
    Timeout.timeout(timeout) { queue.pop }
  rescue Timeout::Error
    flunk "no #{what} within #{timeout}s\nwatched node's log:\n#{@watched.log}"
  end

  def test_watch_resumes_from_its_last_offset_after_a_restart
    start_redis_nodes
    stream = "resume-#{SecureRandom.hex(4)}"
    got, live = watch(stream)
    pop(live, "live watch")
    @publisher.publish(stream, '{"n":1}')
    @publisher.publish(stream, '{"n":2}')
    first = pop(got, "publication 1")
    assert_kind_of Cablehub::StreamPublication, first, first.inspect
    epoch = first.epoch
    refute_empty epoch
    assert_equal Cablehub::StreamPublication.new(stream, epoch, 1, '{"n":1}'), first
    assert_equal Cablehub::StreamPublication.new(stream, epoch, 2, '{"n":2}'), pop(got, "publication 2")

    @watched.stop
    # Published while the watched node is down: only a replay from offset 2
    # can bring it.
    @publisher.publish(stream, '{"n":3}')
    @watched.restart
    pop(live, "live watch after the restart", timeout: 30)
    @publisher.publish(stream, '{"n":4}')
    assert_equal Cablehub::StreamPublication.new(stream, epoch, 3, '{"n":3}'), pop(got, "publication 3 (replayed)")
    assert_equal Cablehub::StreamPublication.new(stream, epoch, 4, '{"n":4}'), pop(got, "publication 4")
    assert got.empty?, "more arrived: #{got.size} items"
  end

  def test_resume_false_raises_unavailable
    start_redis_nodes
    got, live = watch("no-resume", resume: false)
    pop(live, "live watch")
    @watched.stop
    error = pop(got, "the watch's error")
    assert_kind_of Cablehub::UnavailableError, error
    assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, error.code
  end

  # A memory broker forgets every stream when it restarts: the resumed
  # watch's position is gone, and the watch ends with the stream's new
  # position (none yet: epoch "", offset 0).
  def test_resume_on_a_forgetful_server_is_a_position_error
    @watched = TestServer.start("--secret", SECRET, "--public", port: TestServer.free_port)
    @watcher = Cablehub::Client.new(@watched.grpc_addr, secret: SECRET)
    got, live = watch("forgotten")
    pop(live, "live watch")
    @watcher.publish("forgotten", '"one"')
    assert_equal Cablehub::StreamPublication.new("forgotten", @watched.epoch, 1, '"one"'), pop(got, "publication 1")

    @watched.restart
    error = pop(got, "the watch's error", timeout: 30)
    assert_kind_of Cablehub::PositionError, error
    assert_equal ["", 0], [error.epoch, error.offset]
  end
end
