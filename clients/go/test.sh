#!/usr/bin/env bash
# The ctest step: generate the stubs, vet, and run the tests against $NEXADB_SERVER.
# -count=1: never reuse a cached pass (the cache does not see the server binary change).
set -euo pipefail
cd "$(dirname "$0")"
./gen.sh
go vet ./...
go test -count=1 ./...
