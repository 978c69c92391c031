# frozen_string_literal: true

require "test_helper"
require "open3"
require "rbconfig"
require "tmpdir"

# The gem as a user installs it: make sdk-package-ruby builds it, gem
# installs it into an empty directory, and a plain ruby (no -I) requires it
# from there.
class PackageTest < Minitest::Test
  def run!(env, *cmd, chdir: TestServer::REPO)
    out, status = Open3.capture2e(env, *cmd, chdir: chdir)
    assert status.success?, "#{cmd.join(" ")}:\n#{out}"
    out
  end

  def test_gem_builds_installs_and_loads
    Dir.mktmpdir do |dir|
      version = run!({}, "tools/sdk-version").strip
      run!({}, "make", "-s", "sdk-package-ruby", "GEM_DIST=#{dir}/dist")
      gems = Dir["#{dir}/dist/*.gem"]
      assert_equal ["cablehub-#{Gem::Version.new(version)}.gem"], gems.map { |g| File.basename(g) }

      run!({}, "gem", "install", "--local", gems.first, "--install-dir", "#{dir}/gems", "--ignore-dependencies",
           "--no-document")
      # The installed gem beside the system's gems (grpc, google-protobuf),
      # from a directory where no -I or relative path can reach the checkout.
      gem_path = ["#{dir}/gems", *Gem.path].join(File::PATH_SEPARATOR)
      script = <<~RUBY
        require "cablehub"
        puts Cablehub::VERSION, Gem.loaded_specs["cablehub"].full_gem_path
        begin
          Cablehub::Client.new("127.0.0.1:1", timeout: 2).info
        rescue Cablehub::UnavailableError => e
          puts e.code_name
        end
      RUBY
      out = run!({ "GEM_PATH" => gem_path, "GEM_HOME" => nil, "RUBYLIB" => nil, "RUBYOPT" => nil },
                 RbConfig.ruby, "-e", script, chdir: dir)
      assert_equal [version, "#{dir}/gems/gems/cablehub-#{Gem::Version.new(version)}", "UNAVAILABLE"], out.lines.map(&:chomp)
    end
  end
end
