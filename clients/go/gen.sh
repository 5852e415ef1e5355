#!/usr/bin/env bash
# Generates the Go stubs for proto/nexadb/v1 into ./nexadbpb, which is committed (`go get` runs
# no build step, so a module must carry its generated code). Deterministic: protoc-gen-go and
# protoc-gen-go-grpc at pinned versions, installed from the Go module proxy into the
# project-local <repo>/.cache/bin, and protoc at the pinned version of Debian 12's
# protobuf-compiler (each generated file names the versions that made it).
#   gen.sh           regenerate ./nexadbpb (also `go generate ./...`)
#   gen.sh --check   generate into a temporary directory and fail, showing the diff, when the
#                    committed ./nexadbpb differs from it (ctest clients_go_stubs)
set -euo pipefail
# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PROTOC_VERSION=3.21.12
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
MODULE=github.com/nexadb/nexadb/clients/go
GOOGLEAPIS=${NEXADB_GOOGLEAPIS_DIR:-/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis}

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

have=$(protoc --version)
if [ "$have" != "libprotoc $PROTOC_VERSION" ]; then
  echo "gen.sh: needs protoc $PROTOC_VERSION (Debian 12's protobuf-compiler), found '$have'" >&2
  exit 1
fi

bin="$root/.cache/bin"
mkdir -p "$bin"
have_version() { [ -x "$bin/$1" ] && [ "$(cat "$bin/$1.version" 2>/dev/null)" = "$2" ]; }
if ! have_version protoc-gen-go "$PROTOC_GEN_GO_VERSION"; then
  GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
  echo "$PROTOC_GEN_GO_VERSION" > "$bin/protoc-gen-go.version"
fi
if ! have_version protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"; then
  GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  echo "$PROTOC_GEN_GO_GRPC_VERSION" > "$bin/protoc-gen-go-grpc.version"
fi

cd "$root/proto"
protos=(nexadb/v1/*.proto)
# The protos carry no go_package option: map each file to the nexadbpb package here.
maps=()
for p in "${protos[@]}"; do maps+=("M$p=$MODULE/nexadbpb;nexadbpb"); done
go_opts=(--go_opt="module=$MODULE"); grpc_opts=(--go-grpc_opt="module=$MODULE")
for m in "${maps[@]}"; do go_opts+=(--go_opt="$m"); grpc_opts+=(--go-grpc_opt="$m"); done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PATH="$bin:$PATH" protoc -I . -I "$GOOGLEAPIS" -I /usr/include \
  --go_out="$out" "${go_opts[@]}" --go-grpc_out="$out" "${grpc_opts[@]}" "${protos[@]}"
if $check; then
  if ! diff -ru "$here/nexadbpb" "$out/nexadbpb"; then
    echo "gen.sh: clients/go/nexadbpb differs from what proto/ generates: run clients/go/gen.sh and commit it" >&2
    exit 1
  fi
  exit 0
fi
# replace the package whole, so a removed .proto leaves no stale file behind
rm -rf "$here/nexadbpb"
mv "$out/nexadbpb" "$here/nexadbpb"
