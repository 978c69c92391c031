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
    error = assert_raises(ArgumentError) { Cablehub::Client.new("127.0.0.1:1", secret: "a", api_secret: "b") }
    assert_equal "give secret or api_secret, not both", error.message
  end

  def test_addresses
    parse = ->(a) { Cablehub::Address.parse(a) }
    assert_equal ["localhost:8080", nil], parse.call("localhost:8080")
    assert_equal ["localhost:8080", false], parse.call("http://localhost:8080")
    assert_equal ["localhost:8080", false], parse.call("http://localhost:8080/")
    assert_equal ["cable.example.com:443", true], parse.call("https://cable.example.com")
    assert_equal ["cable.example.com:80", false], parse.call("HTTP://cable.example.com")
    assert_equal ["[::1]:8080", true], parse.call("https://[::1]:8080")
    assert_equal ["[::1]:443", true], parse.call("https://[::1]")

    { "ws://localhost:8080" => /unsupported scheme ws:/, "grpc://h:1" => /unsupported scheme/,
      "http://localhost:8080/api" => /must not have a path/, "localhost:8080/x" => /must not have a path/,
      "https://h:1?x=1" => /must not have a path, query/, "http://" => /has no host/, "" => /has no host/,
      ":8080" => /has no host/ }.each do |address, message|
      error = assert_raises(ArgumentError, address) { Cablehub::Client.new(address) }
      assert_match message, error.message, address
    end
    assert_raises(ArgumentError) { Cablehub::Client.new(nil) }
  end

  def test_address_and_credentials_must_agree
    tls = GRPC::Core::ChannelCredentials.new
    error = assert_raises(ArgumentError) { Cablehub::Client.new("http://localhost:1", credentials: tls) }
    assert_match(/http:.*TLS credentials/, error.message)
    assert_raises(ArgumentError) { Cablehub::Client.new("https://localhost:1", credentials: :this_channel_is_insecure) }
    assert_raises(ArgumentError) { Cablehub::Client.new("localhost:1", credentials: tls, root_certificates: "pem") }
    assert_raises(ArgumentError) { Cablehub::Client.new("localhost:1", retries: -1) }
  end

  def test_counts_are_checked_before_any_call
    client = Cablehub::Client.new("127.0.0.1:1")
    [-> { client.history("s", limit: -1) }, -> { client.history("s", epoch: "e", since: "3") },
     -> { client.list_streams(limit: 1.5) }, -> { client.list_streams(limit: 2**32) },
     -> { client.watch("s", epoch: "e", since: -1) }].each do |call|
      assert_raises(ArgumentError) { call.call }
    end
  ensure
    client&.close
  end

  def test_inspect_hides_the_token
    client = Cablehub::Client.new("https://localhost:1", secret: "s3cret")
    assert_equal "#<Cablehub::Client localhost:1 (TLS) with a token>", client.inspect
    refute_includes client.inspect, Cablehub::Client.api_token("s3cret")
  ensure
    client&.close
  end

  def test_error_classes
    codes = GRPC::Core::StatusCodes
    { codes::UNAUTHENTICATED => Cablehub::AuthError, codes::PERMISSION_DENIED => Cablehub::AuthError,
      codes::UNAVAILABLE => Cablehub::UnavailableError, codes::INVALID_ARGUMENT => Cablehub::InvalidArgumentError,
      codes::DEADLINE_EXCEEDED => Cablehub::TimeoutError, codes::FAILED_PRECONDITION => Cablehub::PositionError,
      codes::RESOURCE_EXHAUSTED => Cablehub::Error, codes::UNIMPLEMENTED => Cablehub::Error }.each do |code, klass|
      error = Cablehub::Error.from_status(code, "m")
      assert_instance_of klass, error
      assert_equal [code, "m"], [error.code, error.message]
    end
    assert_operator Cablehub::ClosedError, :<, Cablehub::Error
    assert_nil Cablehub::Error.from_status(codes::FAILED_PRECONDITION, "m").epoch
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
    error = assert_raises(Cablehub::UnavailableError) { client.publish("s", "x") }
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
    error = assert_raises(Cablehub::TimeoutError) { client.presence("s") }
    assert_equal GRPC::Core::StatusCodes::DEADLINE_EXCEEDED, error.code
    assert_operator Time.now - started, :<, 2
    assert_match(/\A#<Cablehub::TimeoutError DEADLINE_EXCEEDED \(4\): /, error.inspect)
  ensure
    client&.close
    silent&.close
  end
end
