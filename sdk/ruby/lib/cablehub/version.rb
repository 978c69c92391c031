# frozen_string_literal: true

module Cablehub
  VERSION = "0.1.0"
end
