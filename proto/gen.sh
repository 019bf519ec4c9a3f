#!/usr/bin/env bash
# Regenerates internal/envdpb from proto/. Needs protoc (Debian protobuf-compiler) and
# protoc-gen-go / protoc-gen-connect-go on PATH. The generated code is committed, so builds
# and CI do not run this.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$(go env GOPATH)/bin:$PATH"
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.19.1
rm -rf internal/envdpb
protoc -I proto \
  --go_out=. --go_opt=module=github.com/warren-sh/warren \
  --connect-go_out=. --connect-go_opt=module=github.com/warren-sh/warren \
  proto/process/process.proto proto/filesystem/filesystem.proto
