#!/usr/bin/env bash
# The ctest step (after clients_go_gen has run gen.sh): vet, and run the tests against
# $NEXADB_SERVER. -count=1: never reuse a cached pass (the cache does not see the server
# binary change). Run ./gen.sh first by hand outside ctest.
set -euo pipefail
# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cd "$(dirname "$0")"
[ -d nexadbpb ] || ./gen.sh
go vet ./...
go test -count=1 ./...
