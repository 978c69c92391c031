# frozen_string_literal: true

require "test_helper"
require "google/protobuf/well_known_types"

# The client's parts that need no server: the token, value conversion,
# argument checks and transport errors.
class UnitTest < Minitest::Test
  def test_api_token_is_the_servers_derivation
    # The token the Go end-to-end tests use for --secret test-secret.
    assert_equal "598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580",
                 Cablehub::Client.api_token("test-secret")
  end

  def test_values_become_plain_ruby
    value = Google::Protobuf::Value.from_ruby(
      { "s" => "x", "n" => 2, "f" => 0.5, "t" => true, "no" => false, "null" => nil,
        "list" => [1, "a", [nil], { "deep" => {} }] }
    )
    assert_equal({ "s" => "x", "n" => 2.0, "f" => 0.5, "t" => true, "no" => false, "null" => nil,
                   "list" => [1.0, "a", [nil], { "deep" => {} }] }, Cablehub::Values.to_ruby(value))
    assert_equal "Bob", Cablehub::Values.to_ruby(Google::Protobuf::Value.from_ruby("Bob"))
    assert_nil Cablehub::Values.to_ruby(nil)
    assert_nil Cablehub::Values.to_ruby(Google::Protobuf::Value.new)
  end

  def test_secret_and_api_secret_exclude_each_other
    assert_raises(ArgumentError) { Cablehub::Client.new("127.0.0.1:1", secret: "a", api_secret: "b") }
  end

  def test_unknown_publication_keys_are_rejected
    client = Cablehub::Client.new("127.0.0.1:1")
    error = assert_raises(ArgumentError) { client.publish_batch([{ stream: "s", data: "x", exlude_socket: "typo" }]) }
    assert_equal "unknown publication keys: exlude_socket", error.message
  ensure
    client&.close
  end

  def test_unreachable_server_is_unavailable
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] } # closed again: nothing listens there
    client = Cablehub::Client.new("127.0.0.1:#{port}", timeout: 2)
    error = assert_raises(Cablehub::Error) { client.publish("s", "x") }
    assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, error.code
    assert_equal "UNAVAILABLE", error.code_name
  ensure
    client&.close
  end

  def test_timeout_is_deadline_exceeded
    # A listener that never accepts: the TCP handshake completes in the
    # kernel but no HTTP/2 answer ever comes.
    silent = TCPServer.new("127.0.0.1", 0)
    client = Cablehub::Client.new("127.0.0.1:#{silent.addr[1]}", timeout: 0.3)
    started = Time.now
    error = assert_raises(Cablehub::Error) { client.presence("s") }
    assert_equal GRPC::Core::StatusCodes::DEADLINE_EXCEEDED, error.code
    assert_operator Time.now - started, :<, 2
    assert_match(/\A#<Cablehub::Error DEADLINE_EXCEEDED \(4\): /, error.inspect)
  ensure
    client&.close
    silent&.close
  end
end
