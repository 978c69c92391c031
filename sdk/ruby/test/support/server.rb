# frozen_string_literal: true

require "socket"

# TestServer runs the built cablehub binary for a test file: on 127.0.0.1,
# port 0 (or the port given), ready once it logged its last startup line.
class TestServer
  REPO = File.expand_path("../../../..", __dir__)
  BINARY = ENV.fetch("CABLEHUB_BIN", File.join(REPO, "bin", "cablehub"))
  START_TIMEOUT = 20

  # addr: "host:port" of HTTP and WebSockets; grpc_addr: of the gRPC API;
  # epoch: the memory broker's stream epoch, part of every delivered
  # message (nil with another broker, whose epochs are per stream).
  attr_reader :addr, :grpc_addr, :epoch

  # Starts the binary with args after --host/--port; raises with the log
  # when it exits or does not get ready in time. port: 0 lets the server
  # pick one; a fixed port lets #restart come back on the same address.
  def self.start(*args, port: 0)
    new(args, port).tap(&:wait_ready)
  end

  # A port nothing listens on right now.
  def self.free_port
    TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
  end

  # Servers still running when the process exits, also when it is killed
  # (SIGTERM, SIGINT) before minitest's after_run hooks run, are stopped.
  RUNNING = {}
  RUNNING_LOCK = Mutex.new
  at_exit { RUNNING_LOCK.synchronize { RUNNING.keys }.each(&:stop) }

  def initialize(args, port)
    raise "no cablehub binary at #{BINARY}: run `make build` or set CABLEHUB_BIN" unless File.executable?(BINARY)

    @args = args
    @port = port
    spawn_server
  end

  def log
    @lock.synchronize { @log.dup }
  end

  def wait_ready
    deadline = Time.now + START_TIMEOUT
    until (main = log[%r{Handle health requests at https?://([^/\s"]+)/}, 1])
      raise "cablehub exited:\n#{log}" if Process.wait(@pid, Process::WNOHANG)
      raise "cablehub did not start in #{START_TIMEOUT}s:\n#{log}" if Time.now > deadline

      sleep 0.02
    end
    @addr = main
    @grpc_addr = log[/Handle gRPC API requests at (\S+) /, 1] or raise "no gRPC address in the log:\n#{log}"
    @epoch = log[/broker \(epoch: ([^,]+),/, 1]
  end

  # Stops the server and starts it again with the same arguments (on the
  # same port when one was given to start).
  def restart
    stop
    spawn_server
    wait_ready
  end

  # Stops the server (SIGTERM, then SIGKILL after 10 s) and reaps it.
  def stop
    return unless @pid

    Process.kill("TERM", @pid)
    deadline = Time.now + 10
    until Process.wait(@pid, Process::WNOHANG)
      if Time.now > deadline
        Process.kill("KILL", @pid)
        Process.wait(@pid)
        break
      end
      sleep 0.02
    end
    @pid = nil
    @drain.join(5)
  rescue Errno::ESRCH, Errno::ECHILD
    @pid = nil
  ensure
    RUNNING_LOCK.synchronize { RUNNING.delete(self) } unless @pid
  end

  private

  def spawn_server
    # Our settings only: the binary also reads ANYCABLE_* variables.
    env = ENV.keys.grep(/\AANYCABLE_|\APORT\z|\AREDIS_URL\z/).to_h { |k| [k, nil] }
    reader, writer = IO.pipe
    @pid = Process.spawn(env, BINARY, "--host", "127.0.0.1", "--port", @port.to_s, *@args,
                         in: File::NULL, out: writer, err: writer)
    RUNNING_LOCK.synchronize { RUNNING[self] = true }
    writer.close
    @log = +""
    @lock = Mutex.new
    # Drains the log for the server's whole life so it never blocks writing.
    @drain = Thread.new do
      while (chunk = reader.readpartial(4096) rescue nil)
        @lock.synchronize { @log << chunk }
      end
    end
  end
end

# TestRedis runs a redis-server of its own on a free port, without
# persistence, so a test's servers share nothing with other runs.
class TestRedis
  attr_reader :url

  def self.available?
    ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).any? { |d| File.executable?(File.join(d, "redis-server")) }
  end

  def initialize
    port = TestServer.free_port
    @url = "redis://127.0.0.1:#{port}/0"
    @pid = Process.spawn("redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", in: File::NULL, out: File::NULL, err: File::NULL)
    pid = @pid
    at_exit { Process.kill("TERM", pid) rescue nil } # rubocop:disable Style/RescueModifier
    deadline = Time.now + 10
    begin
      TCPSocket.open("127.0.0.1", port) do |s|
        s.write("PING\r\n")
        raise Errno::ECONNREFUSED unless s.gets&.start_with?("+PONG")
      end
    rescue SystemCallError
      raise "redis-server did not start on #{port}" if Time.now > deadline || Process.wait(@pid, Process::WNOHANG)

      sleep 0.05
      retry
    end
  end

  def stop
    return unless @pid

    Process.kill("TERM", @pid)
    Process.wait(@pid)
    @pid = nil
  rescue Errno::ESRCH, Errno::ECHILD
    @pid = nil
  end
end
