# frozen_string_literal: true

# TestServer runs the built cablehub binary for a test file: on 127.0.0.1,
# port 0, ready once it logged its last startup line.
class TestServer
  REPO = File.expand_path("../../../..", __dir__)
  BINARY = ENV.fetch("CABLEHUB_BIN", File.join(REPO, "bin", "cablehub"))
  START_TIMEOUT = 20

  # addr: "host:port" of HTTP and WebSockets; grpc_addr: of the gRPC API;
  # epoch: the broker's stream epoch, part of every delivered message.
  attr_reader :addr, :grpc_addr, :epoch

  # Starts the binary with args after --host/--port; raises with the log
  # when it exits or does not get ready in time.
  def self.start(*args)
    new(args).tap(&:wait_ready)
  end

  def initialize(args)
    raise "no cablehub binary at #{BINARY}: run `make build` or set CABLEHUB_BIN" unless File.executable?(BINARY)

    # Our settings only: the binary also reads ANYCABLE_* variables.
    env = ENV.keys.grep(/\AANYCABLE_|\APORT\z/).to_h { |k| [k, nil] }
    reader, writer = IO.pipe
    @pid = Process.spawn(env, BINARY, "--host", "127.0.0.1", "--port", "0", *args,
                         in: File::NULL, out: writer, err: writer)
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
    @epoch = log[/broker \(epoch: ([^,]+),/, 1] or raise "no broker epoch in the log:\n#{log}"
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
  end
end
