# Warren: `make run` installs what is missing, builds, builds the base template and serves;
# `make test` runs the whole suite (unit, conformance and integration against real runsc).
GO       ?= go
BIN      := bin
GOFLAGS  ?= -trimpath
TESTTIME ?= 40m

.PHONY: all build deps run test unit vet leak-check clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags "-s -w" -o $(BIN)/warren-agent ./cmd/warren-agent
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BIN)/warren ./cmd/warren

deps:
	@./scripts/install-deps.sh

run: deps build
	./$(BIN)/warren serve

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal test)" || (echo "gofmt needed on:"; gofmt -l cmd internal test; exit 1)

# Integration tests build their own binaries and need root, runsc, nftables and iproute2
# (scripts/install-deps.sh). -p 1 keeps the heavy packages from competing for 2 cores.
# scripts/test-services.sh starts PostgreSQL and redis-server for the store and rate
# limiter suites and writes their URLs to .test-services.env.
test: build vet
	@./scripts/test-services.sh .test-services.env
	set -a; . ./.test-services.env; set +a; \
	WARREN_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout $(TESTTIME) ./...
	@./scripts/leak-check.sh

unit:
	$(GO) test -count=1 -short ./...

leak-check:
	@./scripts/leak-check.sh

clean:
	rm -rf $(BIN)
