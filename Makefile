# Everything runs through pinned tools: buf and staticcheck from tools/go.mod,
# the protoc plugins from go.mod's tool lines.
BUF := go tool -modfile=tools/go.mod buf
STATICCHECK := go tool -modfile=tools/go.mod staticcheck
GO_PACKAGES := ./...

.PHONY: all build generate lint test test-short bench tools

all: lint test build

build:
	go build -o bin/cablehub ./cmd/cablehub

generate:
	$(BUF) generate
	gofmt -w gen

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/') 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(GO_PACKAGES)
	$(STATICCHECK) $(GO_PACKAGES)
	$(BUF) lint

# The whole test suite: Go tests with the race detector (the Go end-to-end
# tests build their own binary), then the real JavaScript clients in e2e/js
# (@anycable/core, @rails/actioncable) against bin/cablehub.
test: build
	go test -race -count=1 $(GO_PACKAGES)
	cd e2e/js && npm ci --no-audit --no-fund --loglevel=error && CABLEHUB_BIN=$(CURDIR)/bin/cablehub npm test

bench:
	go test -run '^$$' -bench . -benchmem $(GO_PACKAGES)

tools:
	go build -o /dev/null $$(go list -modfile=tools/go.mod tool)
