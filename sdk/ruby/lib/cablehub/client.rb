# frozen_string_literal: true

require "json"
require "openssl"

module Cablehub
  # Client calls a Cablehub node's gRPC API (cablehub.v1.CableService).
  #
  #   client = Cablehub::Client.new("localhost:8080", secret: ENV["CABLEHUB_SECRET"])
  #   client.publish("chat/1", { text: "hi" })
  #
  # A client is safe to share between threads (gRPC multiplexes calls over
  # one HTTP/2 connection); create one per process and reuse it. Every
  # failed call raises Cablehub::Error.
  class Client
    # Seconds each call may take before it fails with DEADLINE_EXCEEDED.
    DEFAULT_TIMEOUT = 5

    # The keys a publication Hash may have (see #publish_batch).
    PUBLICATION_KEYS = %i[stream data exclude_socket transient broadcast_type].freeze

    # The API token the server derives from its application secret when no
    # --api_secret is set: lowercase hex HMAC-SHA256(key=secret,
    # message="api-cable").
    def self.api_token(secret)
      OpenSSL::HMAC.hexdigest("SHA256", secret, "api-cable")
    end

    # address is "host:port" of the gRPC API (by default the server's main
    # port). secret: the application secret (the server's --secret), from
    # which the API token is derived; api_secret: the token itself (the
    # server's --api_secret). With neither, calls carry no authorization.
    # timeout: seconds per call, nil for none. credentials: a
    # GRPC::Core::ChannelCredentials for TLS; plaintext (h2c) by default.
    def initialize(address, secret: nil, api_secret: nil, timeout: DEFAULT_TIMEOUT,
                   credentials: :this_channel_is_insecure)
      raise ArgumentError, "pass secret: or api_secret:, not both" if secret && api_secret

      token = api_secret || (secret && self.class.api_token(secret))
      @metadata = token ? { "authorization" => "Bearer #{token}" }.freeze : {}.freeze
      @timeout = timeout
      @channel = GRPC::Core::Channel.new(address, {}, credentials)
      @stub = V1::CableService::Stub.new(address, credentials, channel_override: @channel)
      @closed = false
    end

    # Publishes data to the subscribers of stream. data is sent as is when
    # it is a String (subscribers get it decoded when it is JSON text, else
    # as a JSON string); any other value is JSON-encoded first.
    # exclude_socket: the session id ("sid") of a client that must not get
    # it; transient: true keeps it out of stream history; broadcast_type: the
    # "type" field of the message clients receive. Returns nil.
    def publish(stream, data, exclude_socket: nil, transient: false, broadcast_type: nil)
      publish_batch([{ stream: stream, data: data, exclude_socket: exclude_socket,
                       transient: transient, broadcast_type: broadcast_type }])
    end

    # Publishes several publications in one request, delivered in this order.
    # Each is a Hash with the keys :stream and :data and optionally
    # :exclude_socket, :transient and :broadcast_type, meaning what #publish's
    # arguments mean (String keys work too). The server validates the batch
    # as a whole: one invalid publication rejects it (INVALID_ARGUMENT) and
    # nothing is delivered. Returns nil.
    def publish_batch(publications)
      request = V1::PublishRequest.new(publications: publications.map { |p| publication(p) })
      call(:publish, request)
      nil
    end

    # Reads the presence records of stream; returns a Cablehub::Presence.
    def presence(stream)
      response = call(:get_presence, V1::GetPresenceRequest.new(stream: stream))
      records = response.records.map { |r| PresenceRecord.new(r.id, Values.to_ruby(r.info)) }
      Presence.new(response.total, records, response.truncated)
    end

    # Closes every session, on every node, whose connection identifiers (a
    # JWT's "ext" claim) equal identifier; reconnect tells the clients
    # whether to reconnect. Sessions close asynchronously. Returns nil.
    def disconnect(identifier, reconnect: false)
      call(:disconnect, V1::DisconnectRequest.new(identifier: identifier, reconnect: reconnect))
      nil
    end

    # Closes the connection. Later calls raise Cablehub::Error (CANCELLED).
    def close
      @closed = true
      @channel.close
      nil
    end

    private

    def publication(hash)
      pub = hash.transform_keys(&:to_sym)
      unknown = pub.keys - PUBLICATION_KEYS
      raise ArgumentError, "unknown publication keys: #{unknown.join(", ")}" unless unknown.empty?

      data = pub[:data]
      data = JSON.generate(data) unless data.is_a?(String)
      V1::Publication.new(stream: pub[:stream].to_s, data: data, meta: meta(pub))
    end

    # The publication's options, or nil when all are defaults.
    def meta(pub)
      return nil unless pub[:exclude_socket] || pub[:transient] || pub[:broadcast_type]

      V1::PublicationMeta.new(exclude_socket: pub[:exclude_socket].to_s, transient: pub[:transient] ? true : false,
                              broadcast_type: pub[:broadcast_type].to_s)
    end

    def call(method, request)
      raise Error.new(GRPC::Core::StatusCodes::CANCELLED, "client is closed") if @closed

      options = { metadata: @metadata }
      options[:deadline] = Time.now + @timeout if @timeout
      @stub.public_send(method, request, **options)
    rescue GRPC::BadStatus => e
      raise Error.new(e.code, e.details)
    end
  end
end
