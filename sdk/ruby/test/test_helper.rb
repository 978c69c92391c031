# frozen_string_literal: true

require "minitest/autorun"
require "base64"
require "openssl"
require "timeout"
require "cablehub"
require "support/server"
require "support/ws_client"

module TestHelper
  SECRET = "test-secret"

  module_function

  # An HS256 JWT with the given claims, signed with secret.
  def jwt(secret, claims)
    b64 = ->(s) { Base64.urlsafe_encode64(s, padding: false) }
    signing_input = "#{b64.call(JSON.generate(alg: "HS256", typ: "JWT"))}.#{b64.call(JSON.generate(claims))}"
    "#{signing_input}.#{b64.call(OpenSSL::HMAC.digest("SHA256", secret, signing_input))}"
  end

  # The identifier of a $pubsub subscription to stream.
  def pubsub(stream)
    JSON.generate(channel: "$pubsub", stream_name: stream)
  end

  # Polls the block until it returns a truthy value, which it returns;
  # fails after timeout seconds.
  def eventually(what, timeout: 5)
    deadline = Time.now + timeout
    loop do
      result = yield
      return result if result
      raise Minitest::Assertion, "timed out waiting for #{what}" if Time.now > deadline

      sleep 0.02
    end
  end
end
