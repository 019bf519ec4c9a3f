# Warren: `make run` installs what is missing, builds, builds the base template and serves;
# `make test` runs the whole suite (unit, conformance and integration against real runsc).
GO       ?= go
BIN      := bin
GOFLAGS  ?= -trimpath
TESTTIME ?= 40m
# Each fuzz target runs this long in make test (scripts/fuzz.sh); the corpora are in testdata/fuzz.
FUZZTIME ?= 15s

.PHONY: all build deps run-deps run test unit vet fuzz leak-check clean web

all: build

# The console's assets (web/dist) are built from source with the lockfile's packages and
# embedded in bin/warren. Without npm the server still builds; its console page then
# says how to get the assets.
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/build.mjs web/package-lock.json

web: web/dist/index.html

web/node_modules/.package-lock.json: web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the web console will not be built (install nodejs and npm)"; fi

web/dist/index.html: $(WEB_SRC) web/node_modules/.package-lock.json
	@if [ -d web/node_modules ]; then cd web && node build.mjs; fi

build: web
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags "-s -w" -o $(BIN)/warren-agent ./cmd/warren-agent
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BIN)/warren ./cmd/warren

deps:
	@./scripts/install-deps.sh

# On a fresh machine make run's two slow steps run side by side: install-deps builds runsc
# (2-4 min, once per pinned version and recipe) in the background while warren serve builds the base
# template (1-3 min, once); serve waits for the runsc build before it starts its runtimes.
run-deps:
	@WARREN_RUNSC_BACKGROUND=1 ./scripts/install-deps.sh

run: run-deps build
	./$(BIN)/warren serve

vet:
	$(GO) vet ./...
	cd sdk/go && $(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal test web sdk/go)" || (echo "gofmt needed on:"; gofmt -l cmd internal test web sdk/go; exit 1)

# Integration tests build their own binaries and need root, runsc, nftables and iproute2
# (scripts/install-deps.sh). -p 1 keeps the heavy packages from competing for 2 cores.
# scripts/test-services.sh starts PostgreSQL and redis-server for the store and rate
# limiter suites and writes their URLs to .test-services.env.
test: build vet
	@./scripts/test-services.sh .test-services.env
	set -a; . ./.test-services.env; set +a; \
	WARREN_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout $(TESTTIME) ./...
	# The Go SDK is its own module; its suite starts a real server from bin/.
	cd sdk/go && CI=$${CI:-} WARREN_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 15m ./...
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh
	@./scripts/leak-check.sh

# Only what needs neither root nor a service: tests that do skip under -short
# (internal/testenv), and the end-to-end suites skip whole.
unit:
	$(GO) test -count=1 -short ./...
	cd sdk/go && $(GO) test -count=1 -short ./...

fuzz:
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

leak-check:
	@./scripts/leak-check.sh

clean:
	rm -rf $(BIN)
