# frozen_string_literal: true

require "test_helper"

# Cablehub::Client against the real binary (one server for this file),
# checked by what WebSocket clients receive and what the calls raise.
class ClientTest < Minitest::Test
  include TestHelper

  def self.server
    @server ||= TestServer.start("--secret", SECRET, "--public").tap do |s|
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

  def test_wrong_secret_is_unauthenticated
    client = Cablehub::Client.new(self.class.server.grpc_addr, secret: "wrong")
    %i[publish presence disconnect].each do |call|
      error = assert_raises(Cablehub::Error) do
        call == :publish ? client.publish("s", "x") : client.public_send(call, "s")
      end
      assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, error.code
      assert_equal 16, error.code
      assert_match(/API token/, error.message)
    end
  ensure
    client&.close
  end

  def test_no_credentials_is_unauthenticated
    client = Cablehub::Client.new(self.class.server.grpc_addr)
    error = assert_raises(Cablehub::Error) { client.publish("s", "x") }
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
    error = assert_raises(Cablehub::Error) { wrong.publish("api-secret", '"no"') }
    assert_equal GRPC::Core::StatusCodes::UNAUTHENTICATED, error.code
  ensure
    client&.close
    wrong&.close
  end

  def test_invalid_publish_is_invalid_argument
    error = assert_raises(Cablehub::Error) { @client.publish("", "x") }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
    assert_equal "stream is required", error.message

    # One invalid publication rejects the whole batch: nothing is delivered.
    ws = subscriber("all-or-nothing")
    error = assert_raises(Cablehub::Error) do
      @client.publish_batch([{ stream: "all-or-nothing", data: '"first"' }, { stream: "", data: "x" }])
    end
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
    @client.publish("all-or-nothing", '"after"')
    assert_equal frame("all-or-nothing", '"after"', 1), ws.receive

    error = assert_raises(Cablehub::Error) { @client.publish_batch([]) }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, error.code
  end

  def test_closed_client_raises_cancelled
    @client.close
    error = assert_raises(Cablehub::Error) { @client.presence("s") }
    assert_equal GRPC::Core::StatusCodes::CANCELLED, error.code
  end
end
