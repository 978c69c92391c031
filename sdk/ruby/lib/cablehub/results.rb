# frozen_string_literal: true

module Cablehub
  # PresenceStats counts who is present on a stream: users is the number of
  # unique presence ids, sessions the number of joined sessions (one user
  # may have several).
  PresenceStats = Struct.new(:users, :sessions)

  # History is a read of a stream's history: epoch is the epoch its offsets
  # count in ("" for a stream never published to), offset the offset of the
  # stream's latest publication (whether or not history still holds it),
  # publications the HistoryPublications read, oldest first, and truncated
  # true when they were cut short to fit the answer (read on with since: the
  # last offset returned).
  History = Struct.new(:epoch, :offset, :publications, :truncated)

  # HistoryPublication is one publication kept in history: its offset and
  # the data as it was published (a String).
  HistoryPublication = Struct.new(:offset, :data)

  # StreamList lists streams with at least one subscriber in the cluster:
  # streams holds StreamInfos sorted by name; unavailable_nodes the ids of
  # live nodes that did not answer in time (their subscribers are missing
  # from the counts); truncated is true when more streams matched than the
  # limit.
  StreamList = Struct.new(:streams, :unavailable_nodes, :truncated)

  # StreamInfo is a stream and its subscriptions, summed over the nodes.
  StreamInfo = Struct.new(:name, :subscribers)

  # ClusterInfo describes the cluster's live nodes: nodes holds a NodeInfo
  # per node that answered, sorted by id; unavailable_nodes the ids of those
  # that did not answer in time.
  ClusterInfo = Struct.new(:nodes, :unavailable_nodes)

  # NodeInfo describes one node: its id (new at every start), version,
  # seconds since it started, and its client connections, their
  # subscriptions and the streams with a subscriber on it.
  NodeInfo = Struct.new(:id, :version, :uptime_seconds, :connections, :subscriptions, :streams)

  # StreamPublication is one publication a watch delivers: the stream's
  # name, the epoch its offset counts in, the offset, and the data as it was
  # published (a String). A transient publication has epoch "" and offset 0.
  StreamPublication = Struct.new(:stream, :epoch, :offset, :data)
end
