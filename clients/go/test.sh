#!/usr/bin/env bash
# ctest clients_go: vet, and run the tests against $NEXADB_SERVER. -count=1: never reuse a
# cached pass (the cache does not see the server binary change).
set -euo pipefail
# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cd "$(dirname "$0")"
go vet ./...
go test -count=1 ./...
