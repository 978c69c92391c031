# frozen_string_literal: true

module Cablehub
  # Error is the one exception every Client call raises when the call fails:
  # the server's answer (UNAUTHENTICATED, INVALID_ARGUMENT, ...) as well as
  # transport failures (UNAVAILABLE when the server cannot be reached,
  # DEADLINE_EXCEEDED after the client's timeout).
  class Error < StandardError
    # The gRPC status code, an Integer equal to one of
    # GRPC::Core::StatusCodes' constants (e.g. UNAUTHENTICATED = 16).
    attr_reader :code

    # message is the gRPC status message as the server (or gRPC) gave it.
    def initialize(code, message)
      @code = code
      super(message)
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
end
