# frozen_string_literal: true

module Cablehub
  # Presence is who is present on a stream: total is the number of unique
  # presence ids, records one PresenceRecord per id, sorted by id;
  # truncated says records holds only the first ids, as many as fit in the
  # server's 1 MiB answer.
  Presence = Struct.new(:total, :records, :truncated)

  # PresenceRecord is one presence id on a stream and the info it joined
  # with, as a plain Ruby value (nil when the client gave none).
  PresenceRecord = Struct.new(:id, :info)

  # Values turns google.protobuf.Value messages into plain Ruby values.
  module Values
    module_function

    # Converts a Google::Protobuf::Value (or nil) to Hash (String keys),
    # Array, String, Float, true, false or nil, recursively. JSON numbers
    # arrive as doubles, so every number is a Float. An unset Value is nil.
    def to_ruby(value)
      return nil if value.nil?

      case value.kind
      when :struct_value
        hash = {}
        value.struct_value.fields.each { |key, field| hash[key] = to_ruby(field) }
        hash
      when :list_value then value.list_value.values.map { |v| to_ruby(v) }
      when :string_value then value.string_value
      when :number_value then value.number_value
      when :bool_value then value.bool_value
      end
    end
  end
end
