# Everything runs through pinned tools: buf and staticcheck from tools/go.mod,
# the protoc plugins from go.mod's tool lines.
BUF := go tool -modfile=tools/go.mod buf
STATICCHECK := go tool -modfile=tools/go.mod staticcheck
GO_PACKAGES := ./...
# Budget of each fuzz target in `make fuzz`: a duration, or a count of
# executions such as 20000x (what CI uses; see .ci/run).
FUZZTIME ?= 30s

.PHONY: all build generate breaking generated-dirs lint lint-openapi test test-unit test-python test-ruby test-typescript bench fuzz tools sdk-package-python

all: lint test build

# The version --version prints and the startup line shows: the git
# description of the checkout, or 0.1.0 outside a repository.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

build:
	go build -ldflags "-X github.com/cablehub/cablehub/server/runner.Version=$(VERSION)" -o bin/cablehub ./cmd/cablehub

# Directories holding generated files only: make generate empties them
# first (buf.gen.yaml has no `clean: true`, because the Python stubs are
# written into the hand-written package's tree), and CI fails when
# regenerating changes anything in them.
GENERATED := gen sdk/python/cablehub/v1 sdk/ruby/gen sdk/typescript/src/gen e2e/rpcapp_ruby/gen

generate:
	rm -rf $(GENERATED)
	$(BUF) generate
	$(BUF) generate --template buf.gen.anycable.yaml
	gofmt -w gen

# The proto's wire and source compatibility (buf's FILE rules) against a
# git revision: the previous commit by default, as CI runs it, so a change
# that breaks generated clients has to be made on purpose (by a commit CI
# fails, or against an older BREAKING_AGAINST to see what changed since).
BREAKING_AGAINST ?= HEAD~1
breaking:
	$(BUF) breaking --against '.git#ref=$(BREAKING_AGAINST),subdir=proto'

generated-dirs:
	@echo $(GENERATED)

# The served OpenAPI document, linted by @redocly/cli (pinned in
# tools/redocly) with its recommended rules: warnings fail too.
lint-openapi:
	cd tools/redocly && npm ci --no-audit --no-fund --loglevel=error
	@out=$$(tools/redocly/node_modules/.bin/redocly lint --extends=recommended gen/openapi/cablehub.openapi.json 2>&1); \
	code=$$?; echo "$$out" | grep -v '║\|╔\|╚'; \
	if [ $$code -ne 0 ] || echo "$$out" | grep -q 'You have [0-9]* warning'; then echo "redocly lint: not clean" >&2; exit 1; fi

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/') 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(GO_PACKAGES)
	$(STATICCHECK) $(GO_PACKAGES)
	$(BUF) lint

# The fast tier: every package but the end-to-end suite, with -short, so
# that nothing has to run (no Redis, NATS, node or built binary; tests that
# need Redis skip themselves). make test runs all of it and everything else.
UNIT_PACKAGES = $(shell go list ./... | grep -v '/e2e$$')
test-unit:
	go test -race -short -count=1 $(UNIT_PACKAGES)

# The whole test suite: Go tests with the race detector (the Go end-to-end
# tests build their own binary), then the real JavaScript clients in e2e/js
# (@anycable/core, @rails/actioncable) against bin/cablehub. The e2e
# package alone takes about ten minutes on two busy cores: past go test's
# default timeout, so it gets 30.
test: build
	go test -race -count=1 -timeout 30m $(GO_PACKAGES)
	cd e2e/js && npm ci --no-audit --no-fund --loglevel=error && CABLEHUB_BIN=$(CURDIR)/bin/cablehub npm test
	$(MAKE) test-python
	$(MAKE) test-ruby
	$(MAKE) test-typescript

# The Python SDK's tests against bin/cablehub, under Debian's Python, which
# sees the Debian packages python3-grpcio, python3-protobuf,
# python3-websocket, and python3-build and python3-venv for the packaging
# test (a python3 on PATH may be another interpreter). The watch-resume
# tests need Redis on 127.0.0.1:6379 (CABLEHUB_TEST_REDIS_URL; DB 12).
PYTHON := /usr/bin/python3
test-python: build
	cd sdk/python && CABLEHUB_BIN=$(CURDIR)/bin/cablehub $(PYTHON) -m unittest discover -s tests -v

# The Python SDK's wheel and sdist in dist/, offline: Debian's python3-build
# with --no-isolation runs Debian's python3-setuptools and python3-wheel
# instead of downloading them. It builds from a copy of sdk/python whose
# cablehub/_version.py carries tools/sdk-version's number in PEP 440's
# spelling (0.1.0-dev.N is 0.1.0.devN), so the checkout stays as it is.
# PY_DIST puts them elsewhere (the SDK's package test builds into a
# temporary directory).
PY_DIST ?= $(CURDIR)/dist
sdk-package-python:
	@set -e; \
	version=$$(tools/sdk-version | sed 's/-dev\./.dev/'); \
	stage=$$(mktemp -d); trap 'rm -rf "$$stage"' EXIT; \
	mkdir -p "$$stage/src" "$(PY_DIST)"; \
	cp -R sdk/python/pyproject.toml sdk/python/README.md sdk/python/cablehub LICENSE "$$stage/src/"; \
	find "$$stage/src" -name __pycache__ -prune -exec rm -rf {} +; \
	printf '# Written by make sdk-package-python from tools/sdk-version.\n__version__ = "%s"\n' "$$version" \
		> "$$stage/src/cablehub/_version.py"; \
	rm -f "$(PY_DIST)"/cablehub-*.whl "$(PY_DIST)"/cablehub-*.tar.gz; \
	$(PYTHON) -m build --no-isolation --outdir "$(PY_DIST)" "$$stage/src" > "$$stage/build.log" 2>&1 \
		|| { cat "$$stage/build.log"; exit 1; }; \
	ls "$(PY_DIST)"/cablehub-$$version*

# The Ruby SDK (sdk/ruby) with minitest against bin/cablehub, under
# Debian's ruby: its ruby-grpc and ruby-google-protobuf are what a ruby
# from a version manager earlier on PATH would not see.
RUBY ?= /usr/bin/ruby
# The tests start bin/cablehub, a redis-server of their own (PATH) for the
# watch that outlives its server, and a scripted gRPC server in-process.
test-ruby: build
	cd sdk/ruby && CABLEHUB_BIN=$(CURDIR)/bin/cablehub $(RUBY) -Ilib -Itest \
		-e 'Dir.glob("test/**/*_test.rb").sort.each { |f| require File.expand_path(f) }'

# Every SDK's package in dist/, each with tools/sdk-version's number: the
# npm tarball, the Python wheel and sdist, the Ruby gem. Offline but for
# npm's registry (the TypeScript SDK's pinned dependencies).
.PHONY: sdk-packages
sdk-packages: sdk-package-typescript sdk-package-python sdk-package-ruby
	@ls -1 dist/

# The Ruby SDK's gem in dist/ (cablehub-<version>.gem, offline: Debian's
# gem). It builds from a copy of sdk/ruby whose lib/cablehub/version.rb
# carries tools/sdk-version's number, so the checkout stays as it is and
# the installed gem's Cablehub::VERSION is its own version; RubyGems spells
# 0.1.0-dev.N as 0.1.0.pre.dev.N. `gem install --local dist/cablehub-*.gem`.
# GEM_DIST puts it elsewhere (the SDK's package test builds into a temporary
# directory).
GEM_DIST ?= $(CURDIR)/dist
.PHONY: sdk-package-ruby
sdk-package-ruby:
	@set -e; \
	version=$$(tools/sdk-version); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp -R sdk/ruby/cablehub.gemspec sdk/ruby/README.md sdk/ruby/lib sdk/ruby/gen "$$tmp"/; \
	sed -i "s/^  VERSION = .*/  VERSION = \"$$version\"/" "$$tmp/lib/cablehub/version.rb"; \
	grep -q "VERSION = \"$$version\"" "$$tmp/lib/cablehub/version.rb"; \
	mkdir -p "$(GEM_DIST)"; rm -f "$(GEM_DIST)"/cablehub-*.gem; \
	cd "$$tmp" && gem build --silent cablehub.gemspec; \
	mv "$$tmp"/cablehub-*.gem "$(GEM_DIST)"/; \
	ls "$(GEM_DIST)"/cablehub-*.gem

# Every Go fuzz target (func FuzzXxx) in the module, each for FUZZTIME:
# `go test -list` names them per package ("ok <package>" follows a
# package's names), and `go test -fuzz` takes one target of one package at
# a time. A failure stops here with the crasher saved under the package's
# testdata/fuzz/<FuzzName>/: commit it to the seed corpus with the fix.
fuzz:
	@list=$$(go test -list '^Fuzz' $(GO_PACKAGES)) || { echo "$$list"; exit 1; }; \
	echo "$$list" | awk '/^Fuzz/ { names = names " " $$1; next } /^ok / { if (names != "") print $$2 names; names = "" }' | \
	while read -r pkg names; do \
		for name in $$names; do \
			echo "== fuzz $$pkg $$name ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
		done; \
	done

bench:
	go test -run '^$$' -bench . -benchmem $(GO_PACKAGES)

tools:
	go build -o /dev/null $$(go list -modfile=tools/go.mod tool)

# Static release binaries for linux and darwin, amd64 and arm64, with
# SHA-256 checksums, in dist/.
RELEASE_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
release:
	rm -rf dist && mkdir -p dist
	for t in $(RELEASE_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath \
			-ldflags "-s -w -X github.com/cablehub/cablehub/server/runner.Version=$(VERSION)" \
			-o dist/cablehub-$(VERSION)-$$os-$$arch ./cmd/cablehub || exit 1; \
	done
	cd dist && sha256sum cablehub-* > SHA256SUMS

# --- TypeScript SDK (sdk/typescript) ---------------------------------------
# Its protoc plugin (protoc-gen-es, run by `buf generate`) is pinned by the
# package's lock file: npm ci installs it when node_modules is missing or
# older than package.json / package-lock.json (every npm install rewrites
# node_modules/.package-lock.json).
TS_SDK := sdk/typescript
TS_SDK_MODULES := $(TS_SDK)/node_modules/.package-lock.json

$(TS_SDK_MODULES): $(TS_SDK)/package.json $(TS_SDK)/package-lock.json
	cd $(TS_SDK) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

generate: $(TS_SDK_MODULES)

# The tests start bin/cablehub (the watch tests restart it, also on the
# Redis broker at 127.0.0.1:6379) and install the packed tarball in a
# temporary project (npm, from its cache or the registry).
test-typescript: build
	cd $(TS_SDK) && npm ci --no-audit --no-fund --loglevel=error && CABLEHUB_BIN=$(CURDIR)/bin/cablehub npm test

# The TypeScript SDK's npm tarball in dist/ (cablehub-sdk-<version>.tgz,
# version from tools/sdk-version): `npm install <that file>` in a project.
.PHONY: sdk-package-typescript
sdk-package-typescript:
	$(TS_SDK)/pack.sh $(CURDIR)/dist
