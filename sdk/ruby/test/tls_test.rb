# frozen_string_literal: true

require "test_helper"
require "fileutils"
require "tmpdir"
require "open3"

# Cablehub::Client's TLS (https:// addresses, root_certificates:,
# credentials:) against a server with --ssl_cert
# and --ssl_key (a CA and a certificate made with openssl for the test).
class TLSTest < Minitest::Test
  include TestHelper

  def openssl(dir, *args)
    out, status = Open3.capture2e("openssl", *args, chdir: dir)
    raise "openssl #{args.join(' ')}: #{out}" unless status.success?
  end

  def setup
    @dir = Dir.mktmpdir
    ec = %w[-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes]
    openssl(@dir, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Ruby SDK Test CA", "-days", "2")
    File.write(File.join(@dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(@dir, "req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    openssl(@dir, "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf")
    @server = TestServer.start("--secret", SECRET, "--public",
                               "--ssl_cert", File.join(@dir, "tls.crt"), "--ssl_key", File.join(@dir, "tls.key"))
  end

  def teardown
    @server&.stop
    FileUtils.remove_entry(@dir)
  end

  def test_tls_credentials
    creds = GRPC::Core::ChannelCredentials.new(File.read(File.join(@dir, "ca.crt")))
    client = Cablehub::Client.new(@server.grpc_addr, secret: SECRET, credentials: creds, timeout: 5)
    client.publish("rb-tls", '{"over":"tls"}')
    assert_equal 0, client.presence("rb-tls").total
  ensure
    client&.close
  end

  def test_https_address_with_root_certificates
    ca = File.read(File.join(@dir, "ca.crt"))
    client = Cablehub::Client.new("https://#{@server.grpc_addr}", secret: SECRET, root_certificates: ca)
    live = Queue.new
    watch = Thread.new do
      Thread.current.report_on_exception = false
      client.watch("rb-https", on_live: -> { live << true }).first
    end
    Timeout.timeout(5) { live.pop }
    client.publish("rb-https", '{"over":"https"}')
    assert_equal Cablehub::StreamPublication.new("rb-https", @server.epoch, 1, '{"over":"https"}'), watch.value
    assert_equal 1, client.history("rb-https").offset

    # root_certificates with host:port turns TLS on too.
    other = Cablehub::Client.new(@server.grpc_addr, secret: SECRET, root_certificates: ca)
    assert_equal 1, other.history("rb-https").offset
  ensure
    client&.close
    other&.close
    watch&.join(5)
  end

  def test_https_address_without_the_ca_fails
    # The system's roots do not hold the test's CA.
    client = Cablehub::Client.new("https://#{@server.grpc_addr}", secret: SECRET, timeout: 2)
    error = assert_raises(Cablehub::UnavailableError) { client.publish("rb-tls", "x") }
    assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, error.code
  ensure
    client&.close
  end

  def test_plaintext_client_fails
    client = Cablehub::Client.new(@server.grpc_addr, secret: SECRET, timeout: 2)
    error = assert_raises(Cablehub::UnavailableError) { client.publish("rb-tls", "x") }
    assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, error.code
  ensure
    client&.close
  end
end
