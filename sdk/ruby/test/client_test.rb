# frozen_string_literal: true

require "test_helper"

# Cablehub::Client against the real binary (one server for this file),
# checked by what WebSocket clients receive and what the calls raise.
class ClientTest < Minitest::Test
  include TestHelper

  HISTORY_LIMIT = 10

  def self.server
    @server ||= TestServer.start("--secret", SECRET, "--public", "--history_limit", HISTORY_LIMIT.to_s).tap do |s|
      Minitest.after_run { s.stop }
    end
  end

  def setup
    @sockets = []
    @sids = {}
    @client = Cablehub::Client.new(self.class.server.grpc_addr, secret: SECRET)
  end

  def teardown
    @client.close
    @sockets.each(&:close)
  end

  # A WebSocket client past its welcome message.
  def connect(query: "")
    ws = WSClient.new(self.class.server.addr, query: query)
    @sockets << ws
    welcome = ws.receive
    assert_match(/\A\{"type":"welcome","sid":"[^"]+"\}\z/, welcome)
    @sids[ws] = JSON.parse(welcome)["sid"]
    ws
  end

  # A WebSocket client subscribed to the $pubsub stream.
  def subscriber(stream)
    ws = connect
    ws.send_json(command: "subscribe", identifier: pubsub(stream))
    assert_equal %({"type":"confirm_subscription","identifier":#{JSON.generate(pubsub(stream))}}), ws.receive
    ws
  end

  # The frame a subscriber of stream gets for a publication: with the
  # stream position for one kept in history, without for a transient one
  # (offset nil).
  def frame(stream, message, offset, type: nil)
    head = type ? %("type":#{JSON.generate(type)},) : ""
    %({#{head}"identifier":#{JSON.generate(pubsub(stream))},"message":#{message}) +
      (offset ? %(,"stream_id":#{JSON.generate(stream)},"epoch":"#{self.class.server.epoch}","offset":#{offset}}) : "}")
  end

  def test_publish_reaches_a_subscriber
    ws = subscriber("publish")
    assert_nil @client.publish("publish", '{"text":"hi"}')
    epoch = self.class.server.epoch
    assert_equal '{"identifier":"{\\"channel\\":\\"$pubsub\\",\\"stream_name\\":\\"publish\\"}",' \
                 "\"message\":{\"text\":\"hi\"},\"stream_id\":\"publish\",\"epoch\":\"#{epoch}\",\"offset\":1}", ws.receive

    # Text that is not JSON arrives as a JSON string; other values are
    # JSON-encoded by the client.
    @client.publish("publish", "plain text")
    assert_equal frame("publish", '"plain text"', 2), ws.receive
    @client.publish("publish", { "list" => [1, nil, true] })
    assert_equal frame("publish", '{"list":[1,null,true]}', 3), ws.receive
  end

  def test_publish_options
    ws = subscriber("options")
    author = subscriber("options")
    @client.publish("options", '{"n":1}', exclude_socket: @sids[author])
    assert_equal frame("options", '{"n":1}', 1), ws.receive

    # Transient: no offset (not in history); broadcast_type becomes "type".
    @client.publish("options", '{"n":2}', transient: true, broadcast_type: "note")
    expected = frame("options", '{"n":2}', nil, type: "note")
    assert_equal expected, ws.receive
    assert_equal expected, author.receive, "the excluded author got the first publication"
  end

  def test_publish_batch_arrives_in_order
    ws = subscriber("batch")
    other = subscriber("batch-other")
    @client.publish_batch([
      { stream: "batch", data: '{"n":1}' },
      { stream: "batch-other", data: '{"n":2}' },
      { "stream" => "batch", "data" => { n: 3 } },
      { stream: "batch", data: '{"n":4}', transient: true, broadcast_type: "last" }
    ])
    assert_equal frame("batch", '{"n":1}', 1), ws.receive
    assert_equal frame("batch", '{"n":3}', 2), ws.receive
    assert_equal frame("batch", '{"n":4}', nil, type: "last"), ws.receive
    assert_equal frame("batch-other", '{"n":2}', 1), other.receive
  end

  def test_presence_reads_back_a_joined_client
    ws = subscriber("room")
    info = { "name" => "Ann", "age" => 36, "tags" => ["a", 1.5], "admin" => false, "nick" => nil }
    ws.send_json(command: "join", identifier: pubsub("room"), presence: { id: "u1", info: info })
    assert_match(/\A\{"type":"presence",.*"message":\{"id":"u1",.*"type":"join"\}\}\z/, ws.receive)

    presence = eventually("u1's presence") { @client.presence("room").then { |p| p if p.total == 1 } }
    assert_equal 1, presence.records.size
    record = presence.records.first
    assert_equal "u1", record.id
    assert_equal({ "name" => "Ann", "age" => 36.0, "tags" => ["a", 1.5], "admin" => false, "nick" => nil }, record.info)
    assert_kind_of Float, record.info["age"]

    # A second client joins without info.
    subscriber("room").send_json(command: "join", identifier: pubsub("room"), presence: { id: "u2" })
    presence = eventually("u2's presence") { @client.presence("room").then { |p| p if p.total == 2 } }
    assert_equal [["u1", info.merge("age" => 36.0)], ["u2", nil]], presence.records.map { |r| [r.id, r.info] }
  end

  def test_presence_of_an_unknown_stream_is_empty
    presence = @client.presence("nobody-here")
    assert_equal 0, presence.total
    assert_equal [], presence.records
    assert_equal false, presence.truncated
  end

  def test_disconnect_closes_matching_clients
    user = connect(query: "?jid=#{jwt(SECRET, ext: '{"user_id":42}')}")
    other = connect(query: "?jid=#{jwt(SECRET, ext: '{"user_id":7}')}")
    assert_nil @client.disconnect('{"user_id":42}')
    assert_equal '{"type":"disconnect","reason":"remote","reconnect":false}', user.receive
    assert_equal [1000, "Closed remotely"], user.receive_close

    @client.disconnect('{"user_id":7}', reconnect: true)
    assert_equal '{"type":"disconnect","reason":"remote","reconnect":true}', other.receive
    assert_equal [1000, "Closed remotely"], other.receive_close
  end

  # Every call, each with a valid argument, as [name, lambda].
  def every_call(client)
    [
      [:publish, -> { client.publish("s", "x") }],
      [:publish_batch, -> { client.publish_batch([{ stream: "s", data: "x" }]) }],
      [:presence, -> { client.presence("s") }],
      [:presence_stats, -> { client.presence_stats("s") }],
      [:history, -> { client.history("s") }],
      [:list_streams, -> { client.list_streams }],
      [:info, -> { client.info }],
      [:disconnect, -> { client.disconnect("s") }],
      [:watch, -> { client.watch("s") { flunk "a publication arrived" } }],
      [:watch_enumerator, -> { client.watch("s").first }]
    ]
  end

  def test_wrong_secret_is_an_auth_error
    client = Cablehub::Client.new(self.class.server.grpc_addr, secret: "wrong")
    every_call(client).each do |name, call|
      error = assert_raises(Cablehub::AuthError, name.to_s) { call.call }
      assert_kind_of Cablehub::Error, error
      assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, error.code, name
      assert_equal "UNAUTHENTICATED", error.code_name
      assert_match(/API token/, error.message, name)
    end
  ensure
    client&.close
  end

  def test_no_credentials_is_unauthenticated
    client = Cablehub::Client.new(self.class.server.grpc_addr)
    error = assert_raises(Cablehub::AuthError) { client.publish("s", "x") }
    assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, error.code
  ensure
    client&.close
  end

  def test_api_secret_is_used_as_the_token
    ws = subscriber("api-secret")
    token = OpenSSL::HMAC.hexdigest("SHA256", SECRET, "api-cable")
    client = Cablehub::Client.new(self.class.server.grpc_addr, api_secret: token)
    client.publish("api-secret", '"ok"')
    assert_equal frame("api-secret", '"ok"', 1), ws.receive

    wrong = Cablehub::Client.new(self.class.server.grpc_addr, api_secret: SECRET)
    error = assert_raises(Cablehub::AuthError) { wrong.publish("api-secret", '"no"') }
    assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, error.code
  ensure
    client&.close
    wrong&.close
  end

  def test_invalid_publish_is_invalid_argument
    error = assert_raises(Cablehub::InvalidArgumentError) { @client.publish("", "x") }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
    assert_equal "stream is required", error.message

    # One invalid publication rejects the whole batch: nothing is delivered.
    ws = subscriber("all-or-nothing")
    error = assert_raises(Cablehub::InvalidArgumentError) do
      @client.publish_batch([{ stream: "all-or-nothing", data: '"first"' }, { stream: "", data: "x" }])
    end
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
    @client.publish("all-or-nothing", '"after"')
    assert_equal frame("all-or-nothing", '"after"', 1), ws.receive

    error = assert_raises(Cablehub::InvalidArgumentError) { @client.publish_batch([]) }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
  end

  def test_empty_stream_is_an_invalid_argument
    {
      presence_stats: -> { @client.presence_stats("") },
      history: -> { @client.history("") },
      watch: -> { @client.watch("") { flunk "a publication arrived" } }
    }.each do |name, call|
      error = assert_raises(Cablehub::InvalidArgumentError, name.to_s) { call.call }
      assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code, name
      assert_equal "stream is required", error.message, name
    end
  end

  def test_since_needs_an_epoch
    [-> { @client.history("s", since: 0) }, -> { @client.watch("s", since: 0) { flunk "a publication arrived" } }]
      .each do |call|
      error = assert_raises(Cablehub::InvalidArgumentError) { call.call }
      assert_equal "epoch is required with since", error.message
    end
  end

  def test_idempotency_key_delivers_once
    ws = subscriber("idem")
    @client.publish("idem", '{"n":1}', idempotency_key: "order-17")
    @client.publish("idem", '{"n":1}', idempotency_key: "order-17") # a retry: accepted, not delivered again
    @client.publish_batch([{ stream: "idem", data: '{"n":1}', idempotency_key: "order-17" },
                           { stream: "idem", data: '{"n":2}', idempotency_key: "order-18" }])
    # The same key on another stream is another publication.
    @client.publish("idem-other", '{"n":1}', idempotency_key: "order-17")
    assert_equal frame("idem", '{"n":1}', 1), ws.receive
    assert_equal frame("idem", '{"n":2}', 2), ws.receive
    assert_equal [[1, '{"n":1}'], [2, '{"n":2}']], @client.history("idem").publications.map(&:to_a)
    assert_equal 1, @client.history("idem-other").offset

    error = assert_raises(Cablehub::InvalidArgumentError) { @client.publish("idem", "x", idempotency_key: "k" * 129) }
    assert_match(/idempotency_key/, error.message)
  end

  def test_presence_stats_count_users_and_sessions
    %w[ann ann bob].each do |id| # ann joins from two sessions
      subscriber("stats").send_json(command: "join", identifier: pubsub("stats"), presence: { id: id })
    end
    stats = eventually("3 sessions of 2 users") { @client.presence_stats("stats").then { |s| s if s.sessions == 3 } }
    assert_equal Cablehub::PresenceStats.new(2, 3), stats
    assert_equal Cablehub::PresenceStats.new(0, 0), @client.presence_stats("stats-nobody")
  end

  def test_history_reads_publications_oldest_first
    epoch = self.class.server.epoch
    @client.publish("hist", '{"n":1}')
    @client.publish("hist", "plain")
    @client.publish("hist", '{"n":2}', transient: true) # not kept
    @client.publish("hist", { n: 3 })

    history = @client.history("hist")
    assert_equal Cablehub::History.new(epoch, 3, [Cablehub::HistoryPublication.new(1, '{"n":1}'),
                                                  Cablehub::HistoryPublication.new(2, "plain"),
                                                  Cablehub::HistoryPublication.new(3, '{"n":3}')], false), history
    assert_equal [2, 3], @client.history("hist", limit: 2).publications.map(&:offset), "the latest 2"
    assert_equal [2, 3], @client.history("hist", epoch: epoch, since: 1).publications.map(&:offset)
    assert_equal [2], @client.history("hist", epoch: epoch, since: 1, limit: 1).publications.map(&:offset)
    assert_equal [], @client.history("hist", epoch: epoch, since: 3).publications

    assert_equal Cablehub::History.new("", 0, [], false), @client.history("hist-never-published")
  end

  def test_history_from_a_lost_position_is_a_position_error
    epoch = self.class.server.epoch
    @client.publish("lost", '"one"')
    error = assert_raises(Cablehub::PositionError) { @client.history("lost", epoch: "stale-epoch", since: 0) }
    assert_equal GRPC::Core::StatusCodes::FAILED_PRECONDITION, error.code
    assert_equal "FAILED_PRECONDITION", error.code_name
    assert_equal [epoch, 1], [error.epoch, error.offset]

    # Evicted: history keeps the last HISTORY_LIMIT publications only.
    (HISTORY_LIMIT + 2).times { |i| @client.publish("lost", JSON.generate(i)) }
    error = assert_raises(Cablehub::PositionError) { @client.history("lost", epoch: epoch, since: 1) }
    assert_equal [epoch, HISTORY_LIMIT + 3], [error.epoch, error.offset]
    assert_equal HISTORY_LIMIT, @client.history("lost").publications.size
  end

  def test_list_streams_counts_subscribers
    2.times { subscriber("ls/a") }
    subscriber("ls/b")
    subscriber("not-ls")
    want = [Cablehub::StreamInfo.new("ls/a", 2), Cablehub::StreamInfo.new("ls/b", 1)]
    list = eventually("the ls/ streams") { @client.list_streams(prefix: "ls/").then { |l| l if l.streams == want } }
    assert_equal Cablehub::StreamList.new(want, [], false), list

    assert_equal Cablehub::StreamList.new(want.first(1), [], true), @client.list_streams(prefix: "ls/", limit: 1)
    assert_equal Cablehub::StreamList.new([], [], false), @client.list_streams(prefix: "nothing-like-this/")
    assert_includes @client.list_streams.streams.map(&:name), "not-ls"

    error = assert_raises(Cablehub::InvalidArgumentError) { @client.list_streams(limit: 1001) }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
  end

  def test_info_describes_this_node
    subscribers = Array.new(2) { subscriber("info-a") }
    subscriber("info-b")
    before = eventually("the node counting this test's clients") do
      @client.info.then { |i| i if i.nodes.first && i.nodes.first.subscriptions >= 3 }
    end.nodes.first
    # Two publications accepted, one of them reaching both subscribers.
    @client.publish("info-nobody", '"x"')
    @client.publish("info-a", '"y"')
    subscribers.each { |ws| assert_equal frame("info-a", '"y"', 1), ws.receive }
    info = eventually("the publications counted") do
      @client.info.then do |i|
        n = i.nodes.first
        i if n.published_total >= before.published_total + 2 && n.deliveries_total >= before.deliveries_total + 2
      end
    end
    assert_equal [], info.unavailable_nodes
    assert_equal 1, info.nodes.size
    node = info.nodes.first
    assert_kind_of Cablehub::NodeInfo, node
    refute_empty node.id
    assert_equal `#{TestServer::BINARY} --version`.split.last, node.version
    assert_operator node.uptime_seconds, :>=, 0
    assert_operator node.connections, :>=, 3
    assert_operator node.streams, :>=, 2
    assert_equal before.id, node.id
    assert_equal before.published_total + 2, node.published_total
    assert_equal before.deliveries_total + 2, node.deliveries_total
    assert_kind_of Integer, node.rpc_calls_total
    assert_equal 0, node.rpc_calls_total # --public: no RPC back end to call
  end

  def test_http_address
    ws = subscriber("http-address")
    client = Cablehub::Client.new("http://#{self.class.server.grpc_addr}", secret: SECRET)
    client.publish("http-address", '"plain h2c"')
    assert_equal frame("http-address", '"plain h2c"', 1), ws.receive
    assert_equal 1, client.history("http-address").offset
  ensure
    client&.close
  end

  def test_calls_after_close_raise_closed_error
    assert_nil @client.close
    assert_nil @client.close, "closing twice is fine"
    assert @client.closed?
    every_call(@client).each do |name, call|
      error = assert_raises(Cablehub::ClosedError, name.to_s) { call.call }
      assert_kind_of Cablehub::Error, error
      assert_equal "client is closed", error.message
      assert_equal GRPC::Core::StatusCodes::CANCELLED, error.code
    end
  end
end
