# frozen_string_literal: true

module Cablehub
  # The SDK's version: 0.1.0 in a checkout; make sdk-package-ruby writes
  # tools/sdk-version's number (e.g. 0.1.0-dev.N, the gem's 0.1.0.pre.dev.N)
  # here in the copy it builds the gem from.
  VERSION = "0.1.0"
end
