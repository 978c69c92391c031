# frozen_string_literal: true

require "test_helper"
require "google/rpc/status_pb"

# The client's retries and status details against a scripted gRPC server
# in this process (the real server cannot be made to fail on cue): it
# answers UNAVAILABLE as many times as told, then succeeds, and records
# every request it got.
class RetryTest < Minitest::Test
  # A CableService whose calls fail with UNAVAILABLE while failures last.
  class FlakyService < Cablehub::V1::CableService::Service
    attr_reader :requests
    attr_accessor :failures

    def initialize
      super
      @requests = Queue.new
      @failures = 0
    end

    def flaky(request, response)
      @requests << request
      if @failures.positive?
        @failures -= 1
        raise GRPC::Unavailable, "try again"
      end
      response
    end

    def publish(request, _call) = flaky(request, Cablehub::V1::PublishResponse.new)
    def get_presence_stats(request, _call) = flaky(request, Cablehub::V1::GetPresenceStatsResponse.new(users: 1, sessions: 2))
    def disconnect(request, _call) = flaky(request, Cablehub::V1::DisconnectResponse.new)

    # A lost position, with the StreamPosition detail the real server sends.
    def get_history(_request, _call)
      position = Cablehub::V1::StreamPosition.new(epoch: "ep-2", offset: 42)
      status = Google::Rpc::Status.new(
        code: GRPC::Core::StatusCodes::FAILED_PRECONDITION, message: "epoch changed",
        details: [Google::Protobuf::Any.new(type_url: "type.googleapis.com/cablehub.v1.StreamPosition",
                                            value: position.to_proto)]
      )
      raise GRPC::FailedPrecondition.new("epoch changed", "grpc-status-details-bin" => status.to_proto)
    end
  end

  def setup
    @service = FlakyService.new
    @server = GRPC::RpcServer.new(pool_size: 2)
    port = @server.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    @server.handle(@service)
    @thread = Thread.new { @server.run }
    @server.wait_till_running(5) or flunk("the scripted server did not start")
    @address = "127.0.0.1:#{port}"
  end

  def teardown
    @client&.close
    @server.stop
    @thread.join(5)
  end

  def requests
    Array.new(@service.requests.size) { @service.requests.pop }
  end

  def test_without_retries_unavailable_is_raised
    @client = Cablehub::Client.new(@address)
    @service.failures = 1
    error = assert_raises(Cablehub::UnavailableError) { @client.publish("s", "x") }
    assert_equal "try again", error.message
    assert_equal [""], requests.map { |r| r.publications.first.idempotency_key }, "no key is made up without retries"
  end

  def test_publish_retries_with_one_key_per_publication
    @client = Cablehub::Client.new(@address, retries: 2)
    @service.failures = 2
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    @client.publish_batch([{ stream: "a", data: "1" }, { stream: "b", data: "2", idempotency_key: "mine" }])
    waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    assert_operator waited, :>=, 0.3, "0.1 s, then 0.2 s between the attempts"

    attempts = requests
    assert_equal 3, attempts.size
    keys = attempts.map { |r| r.publications.map(&:idempotency_key) }
    assert_equal 1, keys.uniq.size, "every attempt carries the same keys: #{keys.inspect}"
    generated, given = keys.first
    assert_match(/\A\h{8}-\h{4}-4\h{3}-[89ab]\h{3}-\h{12}\z/, generated)
    assert_equal "mine", given

    # Each publish gets keys of its own.
    @client.publish("a", "1")
    refute_equal generated, requests.first.publications.first.idempotency_key
  end

  def test_retries_run_out
    @client = Cablehub::Client.new(@address, retries: 1)
    @service.failures = 2
    assert_raises(Cablehub::UnavailableError) { @client.disconnect("x") }
    assert_equal 2, requests.size
  end

  def test_reads_and_disconnect_retry
    @client = Cablehub::Client.new(@address, retries: 3)
    @service.failures = 3
    assert_equal Cablehub::PresenceStats.new(1, 2), @client.presence_stats("s")
    @service.failures = 1
    assert_nil @client.disconnect("x")
    assert_equal 6, requests.size
  end

  def test_close_stops_retrying
    @client = Cablehub::Client.new(@address, retries: 10)
    @service.failures = 100
    thread = Thread.new do
      Thread.current.report_on_exception = false
      @client.presence_stats("s")
    end
    eventually("a retry") { @service.requests.size >= 2 }
    @client.close
    assert_raises(Cablehub::ClosedError) { thread.join(2) or flunk("close did not stop the retries") }
  end

  def test_position_error_reads_the_status_detail
    @client = Cablehub::Client.new(@address)
    error = assert_raises(Cablehub::PositionError) { @client.history("s", epoch: "ep-1", since: 3) }
    assert_equal ["epoch changed", "ep-2", 42], [error.message, error.epoch, error.offset]
    assert_equal 'epoch changed (epoch: "ep-2", offset: 42)', error.inspect[/: (.*)>\z/, 1]
  end

  private

  def eventually(what, timeout: 5)
    deadline = Time.now + timeout
    sleep 0.01 until yield || Time.now > deadline
    yield or flunk("timed out waiting for #{what}")
  end
end
