# frozen_string_literal: true

require_relative "lib/cablehub/version"

Gem::Specification.new do |spec|
  spec.name = "cablehub"
  spec.version = Cablehub::VERSION
  spec.summary = "Client for Cablehub's gRPC server API: publish, presence, history, streams, " \
                 "cluster info, watch, disconnect"
  spec.description = "A thin client over the generated cablehub.v1.CableService stubs, " \
                     "so a Ruby (Rails) application can publish to Cablehub streams, read their " \
                     "history and presence, and watch them live over gRPC."
  spec.authors = ["Cablehub contributors"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.0"

  spec.files = Dir["lib/**/*.rb", "gen/**/*.rb", "README.md"]
  # gen/ holds the stubs generated from proto/ (make generate); they require
  # each other by proto path, e.g. "cablehub/v1/cable_pb".
  spec.require_paths = %w[lib gen]

  # The stubs come from protoc 3.21 and gRPC 1.51 (Debian 12's
  # protobuf-compiler and protobuf-compiler-grpc); their DSL loads on
  # google-protobuf 3.21 up to the last 3.x.
  spec.add_dependency "google-protobuf", ">= 3.21.12", "< 4"
  spec.add_dependency "grpc", ">= 1.51.1", "< 2"
  # google/rpc/status_pb, to read a FAILED_PRECONDITION's StreamPosition
  # detail (grpc depends on it too).
  spec.add_dependency "googleapis-common-protos-types", ">= 1.0", "< 2"
end
