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
  # subscriptions and the streams with a subscriber on it. Then three
  # counters since the node started: published_total, the publications
  # accepted through it (its API and broadcast adapters); deliveries_total,
  # the publications it queued to its clients (one per subscriber a
  # publication reached); rpc_calls_total, its calls to the RPC back end. A
  # rate is the difference between two reads over the time between them,
  # and a smaller value than before means the node restarted (its id
  # changes too).
  NodeInfo = Struct.new(:id, :version, :uptime_seconds, :connections, :subscriptions, :streams,
                        :published_total, :deliveries_total, :rpc_calls_total)

  # StreamPublication is one publication a watch delivers: the stream's
  # name, the epoch its offset counts in, the offset, and the data as it was
  # published (a String). A transient publication has epoch "" and offset 0.
  StreamPublication = Struct.new(:stream, :epoch, :offset, :data)
end
