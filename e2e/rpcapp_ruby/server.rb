# A small AnyCable RPC back end in Ruby, standing in for a Rails app with
# the anycable gem in Cablehub's e2e tests (e2e/rpc_grpc_ruby_test.go,
# e2e/rpc_cluster_test.go, e2e/js/rpc_apps.test.js). It
# runs on Debian's ruby-grpc and ruby-google-protobuf with the stubs in gen/
# (generated from proto/anycable/rpc.proto by `make generate`), so the Go
# client is checked against another language's gRPC and protobuf stacks.
#
# Every answer is built from the request it answers, so the test can assert
# each field. It listens on 127.0.0.1 with a free port and prints
# "LISTENING <port>" once serving; then one line per call,
# "CALL <method> <sid>", and for Disconnect "DISCONNECT <json of the
# request>", so the test can see what arrived and how often.
#
# It reaches Cablehub's REST API (to broadcast and to disconnect users) at
# CABLEHUB_API_URL (such as http://127.0.0.1:8080/api) with the bearer
# token CABLEHUB_API_KEY, or at what a line "cablehub <url> <key>" on stdin
# says, answered by "CONFIGURED <url>" on stdout: a test can start the app
# before the Cablehub that calls it and tell it where that is.
#
# Connect: identified by the `user` cookie or ?user= in the URL, else
#   refused (FAILURE + an unauthorized disconnect frame).
# Command on {"channel":"ChatChannel","room":…}:
#   subscribe    confirm, stream chat:<room>, istate room; no room: reject
#   unsubscribe  stop chat:<room>, delete istate room ("")
#   message      by data's action: speak (reply + state), echo
#                (transmits {echo: <data without action>, user}),
#                broadcast ({text, from: user} to chat:<room> through the
#                REST API), leave (disconnect, after a {"type":"disconnect",
#                "reason":<reason>,"reconnect":false} frame when data has a
#                reason, as Rails' connection.close does), kick (disconnects
#                the user's connections through the REST API by their
#                identifiers), mute (stop_streams), explode (raises: the
#                client sees UNKNOWN), anything else FAILURE
#   other        ERROR
$LOAD_PATH.unshift(File.join(__dir__, "gen"))
require "json"
require "net/http"
require "uri"
require "anycable/rpc_services_pb"

$stdout.sync = true

# App implements anycable.RPC.
class App < Anycable::RPC::Service
  def connect(req, call)
    sid, protov = meta(call, "connect")
    user = user_of(req.env)
    unless user
      return Anycable::ConnectionResponse.new(
        status: :FAILURE, error_msg: "unauthorized",
        transmissions: [json(type: "disconnect", reason: "unauthorized", reconnect: false)]
      )
    end
    Anycable::ConnectionResponse.new(
      status: :SUCCESS,
      identifiers: json(user: user),
      transmissions: [json(type: "welcome", sid: sid)],
      env: Anycable::EnvResponse.new(cstate: {"user" => user, "protov" => protov})
    )
  end

  def command(req, call)
    sid, protov = meta(call, "command")
    channel = JSON.parse(req.identifier)
    if channel["channel"] != "ChatChannel"
      return Anycable::CommandResponse.new(status: :ERROR, error_msg: "unknown channel #{channel["channel"]}")
    end
    room = channel["room"]
    case req.command
    when "subscribe" then subscribe(req, room)
    when "unsubscribe"
      Anycable::CommandResponse.new(
        status: :SUCCESS, stopped_streams: ["chat:#{room}"],
        env: Anycable::EnvResponse.new(istate: {"room" => ""})
      )
    when "message" then perform(req, JSON.parse(req.data), sid, protov)
    else
      Anycable::CommandResponse.new(status: :ERROR, error_msg: "unknown command #{req.command}")
    end
  end

  def disconnect(req, call)
    sid, protov = meta(call, "disconnect")
    record = {
      sid: sid, protov: protov, identifiers: req.identifiers,
      subscriptions: req.subscriptions.to_a, url: req.env.url,
      cstate: req.env.cstate.to_h, istate: req.env.istate.to_h
    }
    puts "DISCONNECT #{JSON.generate(record)}"
    Anycable::DisconnectResponse.new(status: :SUCCESS)
  end

  private

  def subscribe(req, room)
    unless room
      return Anycable::CommandResponse.new(
        status: :FAILURE, error_msg: "no room",
        transmissions: [json(identifier: req.identifier, type: "reject_subscription")]
      )
    end
    Anycable::CommandResponse.new(
      status: :SUCCESS, streams: ["chat:#{room}"],
      transmissions: [json(identifier: req.identifier, type: "confirm_subscription")],
      env: Anycable::EnvResponse.new(istate: {"room" => room})
    )
  end

  # perform runs a channel action, as ActionCable's #perform_action does.
  def perform(req, data, sid, protov)
    case data["action"]
    when "speak"
      user = JSON.parse(req.connection_identifiers)["user"]
      message = {text: data["text"], from: user, room: req.env.istate["room"], sid: sid, protov: protov}
      Anycable::CommandResponse.new(
        status: :SUCCESS,
        transmissions: [json(identifier: req.identifier, message: message)],
        env: Anycable::EnvResponse.new(
          cstate: {"last_text" => data["text"], "protov" => ""},
          istate: {"spoken" => data["text"]}
        )
      )
    when "echo"
      user = JSON.parse(req.connection_identifiers)["user"]
      echo = data.reject { |k, _| k == "action" }
      Anycable::CommandResponse.new(
        status: :SUCCESS, transmissions: [json(identifier: req.identifier, message: {echo: echo, user: user})]
      )
    when "broadcast"
      user = JSON.parse(req.connection_identifiers)["user"]
      room = JSON.parse(req.identifier)["room"]
      Cablehub.post("/publish", stream: "chat:#{room}", data: json(text: data["text"], from: user))
      Anycable::CommandResponse.new(status: :SUCCESS)
    when "kick"
      Cablehub.post("/disconnect", identifier: req.connection_identifiers, reconnect: false)
      Anycable::CommandResponse.new(status: :SUCCESS)
    when "leave"
      bye = data["reason"] ? [json(type: "disconnect", reason: data["reason"], reconnect: false)] : []
      Anycable::CommandResponse.new(status: :SUCCESS, disconnect: true, transmissions: bye)
    when "mute"
      Anycable::CommandResponse.new(status: :SUCCESS, stop_streams: true)
    when "explode"
      raise ArgumentError, "exploded on purpose"
    else
      Anycable::CommandResponse.new(status: :FAILURE, error_msg: "unknown action #{data["action"]}")
    end
  end

  # meta logs the call and returns its sid and protov metadata, which
  # the server sends with every call.
  def meta(call, method)
    sid = call.metadata["sid"]
    puts "CALL #{method} #{sid}"
    [sid, call.metadata["protov"]]
  end

  # user_of reads the `user` cookie, then ?user= in the URL.
  def user_of(env)
    cookies = env.headers["cookie"].to_s.split(/;\s*/).to_h do |kv|
      name, value = kv.split("=", 2)
      [name, value.to_s]
    end
    return cookies["user"] unless cookies["user"].to_s.empty?

    query = URI(env.url).query.to_s
    user = URI.decode_www_form(query).to_h["user"]
    user unless user.to_s.empty?
  end

  def json(**obj) = JSON.generate(obj)
end

# Cablehub is the REST API the app broadcasts and disconnects through.
module Cablehub
  @mutex = Mutex.new
  @url = ENV.fetch("CABLEHUB_API_URL", "")
  @key = ENV.fetch("CABLEHUB_API_KEY", "")

  def self.configure(url, key)
    @mutex.synchronize { @url, @key = url.chomp("/"), key.to_s }
  end

  # post sends body as JSON to the API's path and raises unless it is taken.
  def self.post(path, body)
    url, key = @mutex.synchronize { [@url, @key] }
    raise "Cablehub API URL not configured" if url.empty?

    uri = URI(url + path)
    res = Net::HTTP.post(uri, JSON.generate(body), "Content-Type" => "application/json", "Authorization" => "Bearer #{key}")
    raise "#{path}: #{res.code} #{res.body}" unless res.is_a?(Net::HTTPSuccess)
  end
end

# Configuration lines on stdin; the app runs on when stdin closes.
Thread.new do
  $stdin.each_line do |line|
    word, url, key = line.split
    if word == "cablehub" && url
      Cablehub.configure(url, key)
      puts "CONFIGURED #{url.chomp("/")}"
    else
      warn "unknown configuration line: #{line}"
    end
  end
end

# Keepalive pings from the client every 10 s are allowed, as AnyCable's
# server allows them.
server = GRPC::RpcServer.new(server_args: {
  "grpc.keepalive_permit_without_calls" => 1,
  "grpc.http2.min_ping_interval_without_data_ms" => 5000
})
port = server.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
server.handle(App)
Thread.new do
  server.wait_till_running
  puts "LISTENING #{port}"
end
server.run_till_terminated_or_interrupted(["INT", "TERM"])
