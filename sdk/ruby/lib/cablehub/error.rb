# frozen_string_literal: true

module Cablehub
  # Error is the base of every exception a Client call raises when the call
  # fails: the server's answer (UNAUTHENTICATED, INVALID_ARGUMENT, ...) as
  # well as transport failures (UNAVAILABLE when the server cannot be
  # reached, DEADLINE_EXCEEDED after the client's timeout). Its subclasses
  # name the codes a caller usually handles apart:
  #
  #   AuthError            UNAUTHENTICATED, PERMISSION_DENIED
  #   UnavailableError     UNAVAILABLE
  #   InvalidArgumentError INVALID_ARGUMENT
  #   TimeoutError         DEADLINE_EXCEEDED
  #   PositionError        FAILED_PRECONDITION (with the stream's epoch and offset)
  #   ClosedError          a call on a closed client (CANCELLED, no network)
  #
  # Any other code raises Cablehub::Error itself.
  class Error < StandardError
    # The gRPC status code, an Integer equal to one of
    # GRPC::Core::StatusCodes' constants (e.g. UNAUTHENTICATED = 16).
    attr_reader :code

    # message is the gRPC status message as the server (or gRPC) gave it.
    def initialize(code, message)
      @code = code
      super(message)
    end

    # The Error (subclass) for a failed call: code and message of its
    # status, and the status' trailing metadata, which holds the details
    # (grpc-status-details-bin) a PositionError is read from.
    def self.from_status(code, message, metadata = nil)
      case code
      when GRPC::Core::StatusCodes::UNAUTHENTICATED, GRPC::Core::StatusCodes::PERMISSION_DENIED
        AuthError.new(code, message)
      when GRPC::Core::StatusCodes::UNAVAILABLE then UnavailableError.new(code, message)
      when GRPC::Core::StatusCodes::INVALID_ARGUMENT then InvalidArgumentError.new(code, message)
      when GRPC::Core::StatusCodes::DEADLINE_EXCEEDED then TimeoutError.new(code, message)
      when GRPC::Core::StatusCodes::FAILED_PRECONDITION
        position = StatusDetails.stream_position(metadata)
        PositionError.new(code, message, position&.epoch, position&.offset)
      else new(code, message)
      end
    end

    # The status code's name, e.g. "UNAUTHENTICATED"; "UNKNOWN_CODE_<n>" for
    # a code GRPC::Core::StatusCodes does not name.
    def code_name
      name = GRPC::Core::StatusCodes.constants.find { |c| GRPC::Core::StatusCodes.const_get(c) == code }
      name ? name.to_s : "UNKNOWN_CODE_#{code}"
    end

    def inspect
      "#<#{self.class} #{code_name} (#{code}): #{message}>"
    end
  end

  # AuthError: the API token is missing or wrong (UNAUTHENTICATED), or not
  # allowed (PERMISSION_DENIED).
  class AuthError < Error; end

  # UnavailableError: the server cannot be reached, or could not confirm a
  # publication in time (UNAVAILABLE). The client's retries: option retries
  # these.
  class UnavailableError < Error; end

  # InvalidArgumentError: the server refused the request's content
  # (INVALID_ARGUMENT), e.g. an empty stream name.
  class InvalidArgumentError < Error; end

  # TimeoutError: the call took longer than the client's timeout:
  # (DEADLINE_EXCEEDED).
  class TimeoutError < Error; end

  # PositionError: a history read or watch from a position the stream can no
  # longer serve (FAILED_PRECONDITION): its epoch changed, or the
  # publications after it are no longer retained. epoch and offset are the
  # stream's current position (nil when the server sent none), from which a
  # reader starts over.
  class PositionError < Error
    attr_reader :epoch, :offset

    def initialize(code, message, epoch = nil, offset = nil)
      super(code, message)
      @epoch = epoch
      @offset = offset
    end

    def inspect
      "#<#{self.class} #{code_name} (#{code}): #{message} (epoch: #{epoch.inspect}, offset: #{offset.inspect})>"
    end
  end

  # ClosedError: a call on a client after #close, raised without touching
  # the network; its code is CANCELLED.
  class ClosedError < Error
    def initialize(message = "client is closed")
      super(GRPC::Core::StatusCodes::CANCELLED, message)
    end
  end

  # StatusDetails reads the details of a failed call: the
  # grpc-status-details-bin trailer, a google.rpc.Status whose details are
  # google.protobuf.Any messages.
  module StatusDetails
    TRAILER = "grpc-status-details-bin"
    POSITION_TYPE = "cablehub.v1.StreamPosition"

    module_function

    # The Cablehub::V1::StreamPosition among the details in metadata (the
    # call's trailing metadata), or nil when there is none.
    def stream_position(metadata)
      bin = metadata && metadata[TRAILER]
      bin = bin.first if bin.is_a?(Array)
      return nil if bin.nil? || bin.empty?

      require "google/rpc/status_pb"
      status = Google::Rpc::Status.decode(bin)
      detail = status.details.find { |any| any.type_url.split("/").last == POSITION_TYPE }
      detail && V1::StreamPosition.decode(detail.value)
    rescue Google::Protobuf::ParseError
      nil
    end
  end
end
