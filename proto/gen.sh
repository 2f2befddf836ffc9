#!/usr/bin/env bash
# Regenerates the Go code of proto/skipgrid.proto into proto/skipgridpb.
#
# Needs protoc (Debian: protobuf-compiler) and the two plugins at the versions pinned here:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$(go env GOPATH)/bin:$PATH"
mkdir -p skipgridpb
protoc --go_out=skipgridpb --go_opt=paths=source_relative \
  --go-grpc_out=skipgridpb --go-grpc_opt=paths=source_relative \
  skipgrid.proto
