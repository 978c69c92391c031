# frozen_string_literal: true

require "test_helper"

# Cablehub::Client#watch against the real binary (one server for this
# file, memory broker): live publications, replay with since, lost
# positions, stopping by break and by close.
class WatchTest < Minitest::Test
  include TestHelper

  def self.server
    @server ||= TestServer.start("--secret", SECRET, "--public", "--history_limit", "5").tap do |s|
      Minitest.after_run { s.stop }
    end
  end

  def setup
    @client = Cablehub::Client.new(self.class.server.grpc_addr, secret: SECRET)
    @threads = []
  end

  def teardown
    @client.close
    @threads.each do |t|
      t.join(5) or flunk("a watching thread did not end")
    rescue StandardError
      nil # how the thread ended was the test's to check
    end
  end

  def epoch
    self.class.server.epoch
  end

  def pub(stream, offset, data, epoch: self.epoch)
    Cablehub::StreamPublication.new(stream, epoch, offset, data)
  end

  # Runs the block in a thread whose value (or exception) the test reads
  # with #result.
  def background(&block)
    thread = Thread.new do
      Thread.current.report_on_exception = false
      block.call
    end
    @threads << thread
    thread
  end

  # The thread's value; fails when it has not ended within timeout seconds.
  def result(thread, timeout: 5)
    thread.join(timeout) or flunk("the watch did not end in #{timeout}s")
    thread.value
  end

  # Watches stream in a thread, collecting publications into a Queue until
  # count arrived (then breaks out of the block). Returns [thread, queue]
  # once the watch is live.
  def watch_in_background(stream, count, **options)
    live = Queue.new
    got = Queue.new
    thread = background do
      seen = []
      @client.watch(stream, on_live: -> { live << true }, **options) do |p|
        got << p
        seen << p
        break if seen.size == count
      end
      seen
    end
    wait_live(live, thread)
    [thread, got]
  end

  def wait_live(live, thread)
    Timeout.timeout(5) { live.pop }
  rescue Timeout::Error
    raise(thread.join(0) ? thread.value.inspect : "the watch did not get live within 5s")
  end

  def test_watch_delivers_live_publications
    thread, = watch_in_background("w-live", 4)
    @client.publish("w-live", '{"n":1}')
    @client.publish("w-live", "plain text")
    @client.publish("w-live", '{"n":2}', transient: true)
    @client.publish_batch([{ stream: "w-other", data: "x" }, { stream: "w-live", data: { n: 3 } }])
    assert_equal [pub("w-live", 1, '{"n":1}'), pub("w-live", 2, "plain text"),
                  pub("w-live", 0, '{"n":2}', epoch: ""), pub("w-live", 3, '{"n":3}')], result(thread)
  end

  def test_break_ends_the_watch_and_cancels_its_call
    thread, = watch_in_background("w-break", 1)
    # A live watch is a subscriber of its stream.
    assert_equal [Cablehub::StreamInfo.new("w-break", 1)], @client.list_streams(prefix: "w-break").streams
    @client.publish("w-break", '"one"')
    assert_equal [pub("w-break", 1, '"one"')], result(thread)
    # The server forgets the watcher: the stream has no subscriber left.
    eventually("the watch to leave w-break") { @client.list_streams(prefix: "w-break").streams.empty? }
  end

  def test_enumerator_without_a_block
    enum = @client.watch("w-enum", on_live: -> { @client.publish("w-enum", '"first"') })
    assert_kind_of Enumerator, enum
    thread = background { enum.first(1) }
    assert_equal [pub("w-enum", 1, '"first"')], result(thread)

    # The enumerator watches again each time it is iterated; since replays.
    replay = @client.watch("w-enum", epoch: epoch, since: 0)
    assert_equal [pub("w-enum", 1, '"first"')], result(background { replay.take(1) })
    assert_equal [1], result(background { replay.lazy.map(&:offset).first(1) })
    eventually("the enumerators' watches to end") { @client.list_streams(prefix: "w-enum").streams.empty? }
  end

  def test_since_replays_then_continues_live
    3.times { |i| @client.publish("w-since", JSON.generate(i + 1)) }
    thread, got = watch_in_background("w-since", 3, epoch: epoch, since: 1)
    assert_equal pub("w-since", 2, "2"), Timeout.timeout(5) { got.pop }
    assert_equal pub("w-since", 3, "3"), Timeout.timeout(5) { got.pop }
    @client.publish("w-since", "4")
    assert_equal [2, 3, 4], result(thread).map(&:offset)
  end

  def test_lost_position_is_a_position_error
    @client.publish("w-lost", '"one"')
    error = assert_raises(Cablehub::PositionError) { @client.watch("w-lost", epoch: "stale", since: 0) { flunk } }
    assert_equal GRPC::Core::StatusCodes::FAILED_PRECONDITION, error.code
    assert_equal [epoch, 1], [error.epoch, error.offset]

    # Evicted: history keeps 5 publications (--history_limit 5).
    6.times { |i| @client.publish("w-lost", JSON.generate(i)) }
    error = assert_raises(Cablehub::PositionError) { @client.watch("w-lost", epoch: epoch, since: 1).first }
    assert_equal [epoch, 7], [error.epoch, error.offset]
  end

  def test_close_ends_a_watch_with_closed_error
    live = Queue.new
    thread = background { @client.watch("w-close", on_live: -> { live << true }) { flunk "a publication arrived" } }
    wait_live(live, thread)
    @client.close
    assert_raises(Cablehub::ClosedError) { result(thread) }
  end

  def test_an_exception_in_the_block_ends_the_watch
    error = Class.new(StandardError)
    live = Queue.new
    thread = background { @client.watch("w-raise", on_live: -> { live << true }) { raise error, "stop" } }
    wait_live(live, thread)
    @client.publish("w-raise", '"x"')
    assert_raises(error) { result(thread) }
    eventually("the watch to leave w-raise") { @client.list_streams(prefix: "w-raise").streams.empty? }
  end
end
