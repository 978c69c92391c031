# frozen_string_literal: true

module Cablehub
  # Address turns the address a Client is given into a gRPC target and
  # whether the scheme asks for TLS.
  module Address
    DEFAULT_PORTS = { "http" => 80, "https" => 443 }.freeze

    module_function

    # Parses address: "host:port" (plaintext unless TLS credentials are
    # given), "http://host:port" (plaintext) or "https://host:port" (TLS).
    # Returns [target, tls] where target is "host:port" and tls is true for
    # https://, false for http:// and nil without a scheme. A scheme without
    # a port gets the scheme's (80, 443). Raises ArgumentError for any other
    # scheme, a path, a query, or an empty host.
    def parse(address)
      raise ArgumentError, "address must be a String, got #{address.inspect}" unless address.is_a?(String)

      scheme = nil
      rest = address.strip
      if (m = rest.match(%r{\A([A-Za-z][A-Za-z0-9+.-]*)://(.*)\z}m))
        scheme = m[1].downcase
        unless DEFAULT_PORTS.key?(scheme)
          raise ArgumentError, "address #{address.inspect}: unsupported scheme #{m[1]}:// " \
                               "(give host:port, http://host:port or https://host:port)"
        end
        rest = m[2].delete_suffix("/")
      end
      if rest.match?(%r{[/?#]})
        raise ArgumentError, "address #{address.inspect} must not have a path, query or fragment " \
                             "(give host:port, http://host:port or https://host:port)"
      end
      raise ArgumentError, "address #{address.inspect} has no host" if rest.empty? || rest.start_with?(":")

      rest = "#{rest}:#{DEFAULT_PORTS[scheme]}" if scheme && !port?(rest)
      [rest, scheme && scheme == "https"]
    end

    # Whether host names a port: "host:1", "[::1]:1" (not "::1" or "[::1]").
    def port?(host)
      host.start_with?("[") ? host.match?(/\]:\d+\z/) : host.count(":") == 1
    end
  end
end
