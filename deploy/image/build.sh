#!/usr/bin/env bash
# Builds the server image with buildah (no Docker daemon needed) from a source tarball, the
# same tree a user or a distribution gets: make image (which makes the tarball first).
#   deploy/image/build.sh <nexadb-VERSION.tar.gz> [tag]      prints the tag it built
set -euo pipefail
tarball=${1:?usage: build.sh <nexadb-VERSION.tar.gz> [tag]}
here=$(cd "$(dirname "$0")" && pwd)
version=$(basename "$tarball" .tar.gz)
version=${version#nexadb-}
tag=${2:-localhost/nexadb:$version}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
tar -xzf "$tarball" -C "$ctx" --strip-components=1
revision=$(cat "$ctx/REVISION")
base=$("$here/base.sh")

# docker format: OCI images have no HEALTHCHECK. chroot isolation: works without user
# namespaces or cgroup delegation (as on CI machines); RUN steps use the host's network.
buildah bud --quiet --isolation chroot --format docker --layers \
  --build-arg DEBIAN_IMAGE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -f "$ctx/deploy/Dockerfile" -t "$tag" "$ctx" >&2
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $((size / 1000000)) MB (revision $revision, base $base)" >&2
echo "$tag"
