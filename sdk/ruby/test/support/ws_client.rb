# frozen_string_literal: true

require "base64"
require "digest/sha1"
require "json"
require "securerandom"
require "socket"

# WSClient is a minimal WebSocket client (RFC 6455) for the tests: the
# HTTP upgrade, masked text frames out, unmasked frames in. It reads with a
# deadline, so a missing message fails the test instead of hanging it.
class WSClient
  GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
  TIMEOUT = 5

  # Connects to ws://addr/cable<query> with the given subprotocol and
  # completes the handshake; raises unless the server answers 101 with the
  # right Sec-WebSocket-Accept.
  def initialize(addr, query: "", protocol: "actioncable-v1-json")
    host, port = addr.split(":")
    @socket = TCPSocket.new(host, Integer(port))
    @buffer = "".b
    key = Base64.strict_encode64(SecureRandom.random_bytes(16))
    @socket.write("GET /cable#{query} HTTP/1.1\r\nHost: #{addr}\r\nUpgrade: websocket\r\n" \
                  "Connection: Upgrade\r\nSec-WebSocket-Key: #{key}\r\nSec-WebSocket-Version: 13\r\n" \
                  "Sec-WebSocket-Protocol: #{protocol}\r\n\r\n")
    head = read_until("\r\n\r\n")
    raise "handshake failed:\n#{head}" unless head.start_with?("HTTP/1.1 101")

    accept = Base64.strict_encode64(Digest::SHA1.digest(key + GUID))
    raise "bad Sec-WebSocket-Accept:\n#{head}" unless head.match?(/^Sec-WebSocket-Accept: #{Regexp.escape(accept)}\r$/i)
  end

  # Sends text as one masked text frame.
  def send_text(text)
    payload = text.b
    mask = SecureRandom.random_bytes(4)
    header = [0x81].pack("C")
    header << if payload.bytesize < 126 then [0x80 | payload.bytesize].pack("C")
              elsif payload.bytesize < 65_536 then [0x80 | 126, payload.bytesize].pack("Cn")
              else [0x80 | 127, payload.bytesize].pack("CQ>")
              end
    masked = payload.bytes.each_with_index.map { |b, i| b ^ mask.getbyte(i % 4) }.pack("C*")
    @socket.write(header + mask + masked)
  end

  def send_json(object)
    send_text(JSON.generate(object))
  end

  # The next frame as [opcode, payload]; raises after the deadline.
  def read_frame(timeout = TIMEOUT)
    deadline = Time.now + timeout
    b0, b1 = read_bytes(2, deadline).bytes
    raise "server frame is masked" if b1 & 0x80 != 0

    length = b1 & 0x7f
    length = read_bytes(2, deadline).unpack1("n") if length == 126
    length = read_bytes(8, deadline).unpack1("Q>") if length == 127
    [b0 & 0x0f, read_bytes(length, deadline)]
  end

  # The next text message that is not an Action Cable ping, as a String;
  # raises when none came within timeout seconds (pings do not extend it).
  def receive(timeout = TIMEOUT)
    deadline = Time.now + timeout
    loop do
      opcode, payload = read_frame([deadline - Time.now, 0].max)
      raise "expected a text frame, got opcode #{opcode} #{payload.inspect}" unless opcode == 1

      text = payload.force_encoding(Encoding::UTF_8)
      return text unless text.start_with?('{"type":"ping"')
    end
  end

  # Reads the close frame; returns [code, reason].
  def receive_close(timeout = TIMEOUT)
    deadline = Time.now + timeout
    loop do
      opcode, payload = read_frame([deadline - Time.now, 0].max)
      next if opcode == 1 && payload.start_with?('{"type":"ping"')
      raise "expected a close frame, got opcode #{opcode} #{payload.inspect}" unless opcode == 8

      return [payload.unpack1("n"), payload.byteslice(2..).force_encoding(Encoding::UTF_8)]
    end
  end

  def close
    @socket.close unless @socket.closed?
  end

  private

  def read_until(marker, deadline = Time.now + TIMEOUT)
    fill(deadline) until (i = @buffer.index(marker))
    @buffer.slice!(0, i + marker.bytesize)
  end

  def read_bytes(count, deadline)
    fill(deadline) while @buffer.bytesize < count
    @buffer.slice!(0, count)
  end

  def fill(deadline)
    left = deadline - Time.now
    raise "timed out waiting for the server; buffered: #{@buffer.inspect}" if left <= 0 || !@socket.wait_readable(left)

    @buffer << @socket.read_nonblock(65_536)
  rescue EOFError
    raise "connection closed by the server; buffered: #{@buffer.inspect}"
  end
end
