# frozen_string_literal: true

# Cablehub's Ruby SDK: a thin client for the server API (publish, presence,
# history, streams, cluster info, watch, disconnect) over gRPC. See
# Cablehub::Client.

# The generated stubs live in gen/ and require each other by their proto
# path ("cablehub/v1/cable_pb"). The gemspec puts gen/ on the load path; this
# does the same for a checkout used with `ruby -Ilib` or `$LOAD_PATH << lib`.
gen_dir = File.expand_path("../gen", __dir__)
$LOAD_PATH.push(gen_dir) unless $LOAD_PATH.include?(gen_dir)

require "grpc"
require "cablehub/v1/cable_services_pb"
require "cablehub/version"
require "cablehub/error"
require "cablehub/presence"
require "cablehub/results"
require "cablehub/address"
require "cablehub/client"
