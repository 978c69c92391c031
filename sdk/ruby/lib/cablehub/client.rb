# frozen_string_literal: true

require "json"
require "openssl"
require "securerandom"

module Cablehub
  # Client calls a Cablehub node's gRPC API (cablehub.v1.CableService).
  #
  #   client = Cablehub::Client.new("localhost:8080", secret: ENV["CABLEHUB_SECRET"])
  #   client.publish("chat/1", { text: "hi" })
  #
  # A client is safe to share between threads (gRPC multiplexes calls over
  # one HTTP/2 connection); create one per process and reuse it. Every
  # failed call raises a Cablehub::Error (see error.rb for its subclasses).
  class Client
    # Seconds each unary call may take before it fails with
    # DEADLINE_EXCEEDED (Cablehub::TimeoutError).
    DEFAULT_TIMEOUT = 5

    # The keys a publication Hash may have (see #publish_batch).
    PUBLICATION_KEYS = %i[stream data exclude_socket transient broadcast_type idempotency_key].freeze

    # Backoff between retries and watch resumes: the first wait, doubled
    # after each failure up to the last.
    BACKOFF_FIRST = 0.1
    BACKOFF_MAX = 5.0

    # The full method name of Watch, which #watch drives on gRPC's core call
    # (to see the response headers before the first publication).
    WATCH_METHOD = "/cablehub.v1.CableService/Watch"

    # The response header the server sends once a watch is live.
    WATCH_LIVE_HEADER = "cablehub-watch"

    # The channel's gRPC core arguments (channel_args: adds to or replaces
    # them). Reconnect as soon as a watch or a retry tries again (100 ms up
    # to 5 s) instead of gRPC's default of up to two minutes after an
    # outage (gRPC core reads grpc.min_reconnect_backoff_ms as the connect
    # timeout, so that one stays at its 20 s). While calls are open, ping a connection silent for 30 s and
    # drop it when the answer takes 10 s, so a watch on a server that
    # vanished without closing the connection ends with UNAVAILABLE, and
    # resumes, instead of waiting forever (Cablehub lets clients ping every
    # 5 s).
    CHANNEL_ARGS = {
      "grpc.initial_reconnect_backoff_ms" => 100,
      "grpc.max_reconnect_backoff_ms" => 5000,
      "grpc.keepalive_time_ms" => 30_000,
      "grpc.keepalive_timeout_ms" => 10_000,
      "grpc.http2.max_pings_without_data" => 0
    }.freeze

    # The API token the server derives from its application secret when no
    # --api_secret is set: lowercase hex HMAC-SHA256(key=secret,
    # message="api-cable").
    def self.api_token(secret)
      OpenSSL::HMAC.hexdigest("SHA256", secret, "api-cable")
    end

    # address: "host:port" of the gRPC API (by default the server's main
    # port), "http://host:port" (plaintext) or "https://host:port" (TLS,
    # trusting the system's roots unless root_certificates: or credentials:
    # say otherwise). Another scheme or a path raises ArgumentError.
    #
    # secret: the application secret (the server's --secret), from which the
    # API token is derived; api_secret: the token itself (the server's
    # --api_secret). Give one of them (both: ArgumentError); with neither,
    # calls carry no authorization.
    #
    # timeout: seconds per unary call, nil for none (a watch has none).
    #
    # retries: how many times a call failing with UNAVAILABLE is tried
    # again, waiting 0.1 s, then twice as long each time (at most 5 s). With
    # retries > 0 every publication without an idempotency_key gets a random
    # one before the first attempt, so a retry cannot deliver it twice.
    #
    # root_certificates: PEM text of the CA certificates to trust for TLS
    # (turns TLS on for a "host:port" address). credentials: a
    # GRPC::Core::ChannelCredentials for full control; plaintext (h2c) by
    # default.
    #
    # channel_args: gRPC core channel arguments merged over CHANNEL_ARGS.
    #
    # The client connects on its first call, and again whenever the
    # connection broke, so new raises only on bad arguments (ArgumentError).
    def initialize(address, secret: nil, api_secret: nil, timeout: DEFAULT_TIMEOUT, retries: 0,
                   root_certificates: nil, credentials: nil, channel_args: {})
      raise ArgumentError, "give secret or api_secret, not both" if secret && api_secret
      unless retries.is_a?(Integer) && retries >= 0
        raise ArgumentError, "retries must be a non-negative Integer, got #{retries.inspect}"
      end
      unless timeout.nil? || (timeout.is_a?(Numeric) && timeout.positive?)
        raise ArgumentError, "timeout must be a positive number of seconds or nil, got #{timeout.inspect}"
      end

      target, tls = Address.parse(address)
      credentials = channel_credentials(address, tls, root_certificates, credentials)
      token = api_secret || (secret && self.class.api_token(secret))
      @metadata = token ? { "authorization" => "Bearer #{token}" }.freeze : {}.freeze
      @timeout = timeout
      @retries = retries
      @channel = GRPC::Core::Channel.new(target, CHANNEL_ARGS.merge(channel_args), credentials)
      @stub = V1::CableService::Stub.new(target, credentials, channel_override: @channel)
      @lock = Mutex.new
      @closed_signal = ConditionVariable.new
      @watches = {}
      @closed = false
      @description = "#<#{self.class} #{target}#{credentials == :this_channel_is_insecure ? "" : " (TLS)"}" \
                     "#{token ? " with a token" : ""}>"
    end

    # Names the target, never the token.
    def inspect
      @description
    end

    # Publishes data to the subscribers of stream. data is sent as is when
    # it is a String (subscribers get it decoded when it is JSON text, else
    # as a JSON string); any other value is JSON-encoded first.
    # exclude_socket: the session id ("sid") of a client that must not get
    # it; transient: true keeps it out of stream history; broadcast_type: the
    # "type" field of the message clients receive; idempotency_key: a key
    # (at most 128 bytes) that makes the server deliver a publication with
    # the same stream and key only once within its idempotency window.
    # Returns nil.
    def publish(stream, data, exclude_socket: nil, transient: false, broadcast_type: nil, idempotency_key: nil)
      publish_batch([{ stream: stream, data: data, exclude_socket: exclude_socket, transient: transient,
                       broadcast_type: broadcast_type, idempotency_key: idempotency_key }])
    end

    # Publishes several publications in one request, delivered in this order.
    # Each is a Hash with the keys :stream and :data and optionally
    # :exclude_socket, :transient, :broadcast_type and :idempotency_key,
    # meaning what #publish's arguments mean (String keys work too). The
    # server validates the batch as a whole: one invalid publication rejects
    # it (InvalidArgumentError) and nothing is delivered. Returns nil.
    def publish_batch(publications)
      check_open
      publications = publications.map { |p| publication(p) }
      publications.each { |p| p.idempotency_key = SecureRandom.uuid if p.idempotency_key.empty? } if @retries.positive?
      call(:publish, V1::PublishRequest.new(publications: publications))
      nil
    end

    # Reads the presence records of stream; returns a Cablehub::Presence.
    def presence(stream)
      response = call(:get_presence, V1::GetPresenceRequest.new(stream: stream))
      records = response.records.map { |r| PresenceRecord.new(r.id, Values.to_ruby(r.info)) }
      Presence.new(response.total, records, response.truncated)
    end

    # Counts who is present on stream; returns a Cablehub::PresenceStats
    # (users: unique presence ids, sessions: joined sessions).
    def presence_stats(stream)
      response = call(:get_presence_stats, V1::GetPresenceStatsRequest.new(stream: stream))
      PresenceStats.new(response.users, response.sessions)
    end

    # Reads stream's history; returns a Cablehub::History. Without since:
    # the latest limit publications (0: all retained). With since (an
    # offset) and epoch: the first limit publications after that position;
    # a position the stream can no longer serve (another epoch, or evicted)
    # raises PositionError carrying the stream's current epoch and offset.
    def history(stream, limit: 0, epoch: "", since: nil)
      check_count(:limit, limit)
      check_count(:since, since) unless since.nil?
      request = V1::GetHistoryRequest.new(stream: stream, limit: limit, epoch: epoch.to_s)
      request.since = since unless since.nil?
      response = call(:get_history, request)
      publications = response.publications.map { |p| HistoryPublication.new(p.offset, p.data) }
      History.new(response.epoch, response.offset, publications, response.truncated)
    end

    # Lists the streams with at least one subscriber on some node of the
    # cluster, their names starting with prefix, at most limit of them (0:
    # the server's default, 100); returns a Cablehub::StreamList.
    def list_streams(prefix: "", limit: 0)
      check_count(:limit, limit)
      response = call(:list_streams, V1::ListStreamsRequest.new(prefix: prefix, limit: limit))
      streams = response.streams.map { |s| StreamInfo.new(s.name, s.subscribers) }
      StreamList.new(streams, response.unavailable_nodes.to_a, response.truncated)
    end

    # Describes every live node of the cluster; returns a
    # Cablehub::ClusterInfo.
    def info
      response = call(:get_info, V1::GetInfoRequest.new)
      nodes = response.nodes.map do |n|
        NodeInfo.new(n.id, n.version, n.uptime_seconds, n.connections, n.subscriptions, n.streams,
                     n.published_total, n.deliveries_total, n.rpc_calls_total)
      end
      ClusterInfo.new(nodes, response.unavailable_nodes.to_a)
    end

    # Closes every session, on every node, whose connection identifiers (a
    # JWT's "ext" claim) equal identifier; reconnect tells the clients
    # whether to reconnect. Sessions close asynchronously. Returns nil.
    def disconnect(identifier, reconnect: false)
      call(:disconnect, V1::DisconnectRequest.new(identifier: identifier, reconnect: reconnect))
      nil
    end

    # Watches stream: yields each publication (a Cablehub::StreamPublication)
    # as it happens, in offset order and once. Without a block it returns an
    # Enumerator over the same (each, take, first, lazy, next).
    #
    # since (an offset) and epoch: first replay the publications after that
    # position from history. Without since the watch starts with the next
    # publication.
    #
    # When the call breaks with UNAVAILABLE (the server restarted, the
    # connection was lost), or the server ends it without an error, the
    # watch is opened again, from the last offset it delivered, waiting
    # 0.1 s doubling up to 5 s between attempts, for as long as the caller
    # keeps iterating; resume: false raises the UnavailableError instead
    # (or returns nil when the server ended the call). Any other failure ends the watch with its
    # error: PositionError when the position is lost (the epoch changed, or
    # publications were lost to the watcher), AuthError,
    # Cablehub::Error (RESOURCE_EXHAUSTED) when the watcher did not keep up.
    #
    # on_live: called (without arguments) each time the server says the
    # watch is live, i.e. listening to the stream: a publication made after
    # that is delivered.
    #
    # Leaving the block (break, return, an exception) cancels the call; so
    # does #close, after which the watch raises ClosedError. With the
    # Enumerator, internal iteration (each, first, take) cancels it on
    # leaving too; an Enumerator stepped with next holds its call until it
    # is garbage-collected or the client is closed.
    def watch(stream, epoch: "", since: nil, resume: true, on_live: nil, &block)
      check_open
      check_count(:since, since) unless since.nil?
      return enum_for(:watch, stream, epoch: epoch, since: since, resume: resume, on_live: on_live) unless block

      last_epoch = since.nil? ? nil : epoch.to_s
      last_offset = since
      delay = BACKOFF_FIRST
      loop do
        request = V1::WatchRequest.new(stream: stream, epoch: last_offset.nil? ? epoch.to_s : last_epoch)
        request.since = last_offset unless last_offset.nil?
        begin
          watch_once(request) do |event|
            if event == :live
              delay = BACKOFF_FIRST
              on_live&.call
              next
            end

            pub = event
            if pub.offset.positive?
              # Never deliver a position twice, should a resume overlap.
              next if pub.epoch == last_epoch && !last_offset.nil? && pub.offset <= last_offset

              last_epoch = pub.epoch
              last_offset = pub.offset
            end
            delay = BACKOFF_FIRST
            yield StreamPublication.new(pub.stream, pub.epoch, pub.offset, pub.data)
          end
          # The server ended the call without an error: resumed like a
          # broken one.
          return nil unless resume
        rescue UnavailableError
          raise unless resume
        end
        wait_backoff(delay)
        delay = [delay * 2, BACKOFF_MAX].min
      end
    end

    # Closes the connection and cancels the watches in progress (they raise
    # ClosedError). Later calls raise ClosedError without touching the
    # network. Closing twice is fine. Returns nil.
    def close
      calls = @lock.synchronize do
        return nil if @closed

        @closed = true
        @closed_signal.broadcast
        @watches.keys
      end
      calls.each(&:cancel)
      @channel.close
      nil
    end

    # Whether #close was called.
    def closed?
      @lock.synchronize { @closed }
    end

    private

    def channel_credentials(address, tls, root_certificates, credentials)
      if root_certificates && credentials
        raise ArgumentError, "give root_certificates or credentials, not both"
      end

      credentials ||= GRPC::Core::ChannelCredentials.new(root_certificates) if root_certificates
      insecure = credentials.nil? || credentials == :this_channel_is_insecure
      if tls == false && !insecure
        raise ArgumentError, "address #{address.inspect} is http:// (plaintext) but TLS credentials were given: use https://"
      end
      if tls == true && credentials == :this_channel_is_insecure
        raise ArgumentError, "address #{address.inspect} is https:// but the credentials are :this_channel_is_insecure"
      end

      # https:// without credentials: the default roots (the system's).
      credentials || (tls ? GRPC::Core::ChannelCredentials.new : :this_channel_is_insecure)
    end

    def publication(hash)
      pub = hash.transform_keys(&:to_sym)
      unknown = pub.keys - PUBLICATION_KEYS
      raise ArgumentError, "unknown publication keys: #{unknown.join(", ")}" unless unknown.empty?

      data = pub[:data]
      data = JSON.generate(data) unless data.is_a?(String)
      V1::Publication.new(stream: pub[:stream].to_s, data: data, meta: meta(pub),
                          idempotency_key: pub[:idempotency_key].to_s)
    end

    # The publication's options, or nil when all are defaults.
    def meta(pub)
      return nil unless pub[:exclude_socket] || pub[:transient] || pub[:broadcast_type]

      V1::PublicationMeta.new(exclude_socket: pub[:exclude_socket].to_s, transient: pub[:transient] ? true : false,
                              broadcast_type: pub[:broadcast_type].to_s)
    end

    def check_open
      raise ClosedError if closed?
    end

    # Raises ArgumentError unless value is an Integer the request's
    # unsigned field can hold.
    def check_count(name, value)
      return if value.is_a?(Integer) && value >= 0 && value < 2**(name == :since ? 64 : 32)

      raise ArgumentError, "#{name} must be a non-negative Integer, got #{value.inspect}"
    end

    # Calls the unary method, retrying UNAVAILABLE up to @retries times.
    def call(method, request)
      check_open
      delay = BACKOFF_FIRST
      attempts = 0
      begin
        call_once(method, request)
      rescue UnavailableError
        raise if attempts >= @retries

        attempts += 1
        wait_backoff(delay)
        delay = [delay * 2, BACKOFF_MAX].min
        retry
      end
    end

    def call_once(method, request)
      options = { metadata: @metadata }
      options[:deadline] = Time.now + @timeout if @timeout
      @stub.public_send(method, request, **options)
    rescue GRPC::BadStatus => e
      raise ClosedError if closed?

      raise Error.from_status(e.code, e.details, e.metadata)
    rescue RuntimeError => e
      # gRPC raises a plain RuntimeError for a call on a closed channel.
      raise ClosedError if closed?

      raise e
    end

    # Sleeps seconds, or less when the client is closed (then raises
    # ClosedError).
    def wait_backoff(seconds)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
      @lock.synchronize do
        loop do
          raise ClosedError if @closed

          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          break if left <= 0

          @closed_signal.wait(@lock, left)
        end
      end
    end

    # Runs one Watch call on gRPC's core call: yields :live when the
    # response headers say so, then each V1::StreamPublication; returns when
    # the server ends the call with OK, raises the Error of any other
    # status. The call is cancelled when the block leaves early.
    def watch_once(request)
      ops = GRPC::Core::CallOps
      call = @lock.synchronize do
        raise ClosedError if @closed

        c = @channel.create_call(nil, nil, WATCH_METHOD, nil, GRPC::Core::TimeConsts::INFINITE_FUTURE)
        @watches[c] = true
        c
      end
      finished = false
      begin
        begin
          call.run_batch(ops::SEND_INITIAL_METADATA => @metadata, ops::SEND_MESSAGE => V1::WatchRequest.encode(request),
                         ops::SEND_CLOSE_FROM_CLIENT => nil)
          headers = call.run_batch(ops::RECV_INITIAL_METADATA => nil).metadata || {}
          yield :live if Array(headers[WATCH_LIVE_HEADER]).include?("live")
          loop do
            message = call.run_batch(ops::RECV_MESSAGE => nil).message
            break if message.nil?

            yield V1::StreamPublication.decode(message)
          end
        rescue GRPC::Core::CallError
          # The call failed; its status says why.
          nil
        end
        status = call.run_batch(ops::RECV_STATUS_ON_CLIENT => nil).status
        finished = true
        raise ClosedError if closed?
        return if status.code == GRPC::Core::StatusCodes::OK

        raise Error.from_status(status.code, status.details, status.metadata)
      ensure
        @lock.synchronize { @watches.delete(call) }
        call.cancel unless finished
        call.close
      end
    end
  end
end
