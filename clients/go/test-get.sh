#!/usr/bin/env bash
# ctest clients_go_get: `go get` of this module the way a user runs it, in a fresh module
# declaring `go 1.23.0` with an empty module cache. No VCS host is reachable here, so a git
# repository stands in for github.com/nexadb/nexadb (git's url.insteadOf points the
# https://github.com/nexadb/nexadb that go runs `git` on at it): it holds clients/go as a commit
# of this tree would (tracked and untracked-but-not-ignored files), tagged clients/go/v0.1.0, so
# go resolves the module in its subdirectory from the tag and builds the module zip itself.
# The dependencies come from GOPROXY as configured, checked against GOSUMDB.
# Checks: `go get` succeeds, the program importing the client builds, and go did not have to
# raise the fresh module's go directive (every dependency supports Go 1.23).
set -euo pipefail
# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
MODULE=github.com/nexadb/nexadb/clients/go
GO_VERSION=1.23.0

tmp=$(mktemp -d)
# the module cache is read-only
trap 'chmod -R u+w "$tmp" && rm -rf "$tmp"' EXIT

repo="$tmp/repo"
git init -q "$repo"
(cd "$root" && git ls-files -z -co --exclude-standard -- clients/go) |
  while IFS= read -r -d '' f; do
    if [ -e "$root/$f" ]; then printf '%s\0' "$f"; fi   # skip tracked files deleted here
  done | (cd "$root" && xargs -0 cp --parents -t "$repo" --)
git -C "$repo" add -A
git -C "$repo" -c user.name=test -c user.email=test@localhost commit -q -m snapshot
git -C "$repo" tag clients/go/v0.1.0

cat > "$tmp/gitconfig" <<CFG
[url "file://$repo"]
	insteadOf = https://github.com/nexadb/nexadb
[protocol "file"]
	allow = always
CFG
export GIT_CONFIG_GLOBAL="$tmp/gitconfig" GIT_CONFIG_NOSYSTEM=1
export GOPATH="$tmp/gopath" GOMODCACHE="$tmp/gopath/pkg/mod" GOFLAGS=-mod=mod GOTOOLCHAIN=local
export GOPRIVATE=github.com/nexadb/nexadb   # fetched from the repository, not the proxy or checksum database

app="$tmp/app"
mkdir "$app"
cd "$app"
go mod init example.com/app
go mod edit -go="$GO_VERSION"
cat > main.go <<'GO'
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

func main() {
	db, err := nexadb.Connect("localhost:6970", nexadb.WithAPIKey(os.Getenv("NEXADB_API_KEY")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := db.Collection("users").Insert(ctx, bson.D{{Key: "name", Value: "Alice"}, {Key: "age", Value: 28}})
	fmt.Println(id, err)
}
GO
go get "$MODULE@v0.1.0"
go build -o app .
want="go $GO_VERSION"
if ! grep -qx "$want" go.mod; then
  echo "test-get.sh: go get raised the module's go directive from $GO_VERSION:" >&2
  cat go.mod >&2
  exit 1
fi
echo "go get $MODULE@v0.1.0: built with $(grep -c . go.sum) go.sum lines, go directive kept at $GO_VERSION"
