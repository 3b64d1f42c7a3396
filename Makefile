# The user's interface to Spillway. Every target installs what is missing first
# (scripts/setup.sh, apt-get on Debian 12), so each works on a fresh machine.
.PHONY: all setup build run test asan tsan fuzz fuzz-run bench clean

CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B build -G Ninja $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)

# Starts spillwayd on :$(PORT) with the built-in dir sink writing into ./uploads.
PORT ?= 8080
run: build
	@mkdir -p uploads
	@echo "spillwayd on http://localhost:$(PORT), storing uploads in ./uploads. Try:"
	@echo "  curl -F 'note=hello' -F 'file=@README.md' http://localhost:$(PORT)/upload"
	@echo "  curl --http2-prior-knowledge --data-binary @README.md http://localhost:$(PORT)/raw"
	@echo "  curl http://localhost:$(PORT)/metrics"
	@echo "Ctrl-C drains and stops it."
	@exec build/server/spillwayd --http-port=$(PORT) --sink=dir:$(CURDIR)/uploads

# Every test: unit and integration tests under ctest, then each fuzzer (the multipart
# parser, the HTTP/1.1 and HTTP/2 sessions) for FUZZ_SECONDS when clang is installed.
test: build
	@ctest --test-dir build --output-on-failure -j $(JOBS)
	@if command -v clang++ >/dev/null; then $(MAKE) --no-print-directory fuzz-run; \
	 else echo "fuzz: clang not installed, skipped"; fi

asan: setup
	@cmake -S . -B build-asan -G Ninja -DSPILLWAY_SANITIZE=address $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@# A small quarantine: the stream-mode tests bound the server's peak RSS, which
	@# ASan's default 256 MiB of quarantined frees would otherwise dominate.
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16 \
	  UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# Debian's gRPC and Abseil are not built with TSan, so the hand-offs between gRPC's own
# threads are invisible to it and every test that sends gRPC traffic reports races
# inside gRPC (ChannelArgs, slices, callback tags). Those tests (TSAN_EXCLUDE) run
# under `make test` and `make asan`; `make tsan` covers the rest: the event loops, HTTP
# sessions, dispatcher, sinks and stream sources.
TSAN_EXCLUDE ?= ^(GrpcTest|CliTest|ClientLibrary)\.
tsan: setup
	@cmake -S . -B build-tsan -G Ninja -DSPILLWAY_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@TSAN_OPTIONS=halt_on_error=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS) -E '$(TSAN_EXCLUDE)'

fuzz: setup
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DSPILLWAY_FUZZ=ON \
	  -DSPILLWAY_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# Runs each fuzzer for FUZZ_SECONDS from its committed seed corpus; new inputs go to
# a scratch corpus so the committed one stays small.
fuzz-run: fuzz
	@for f in build-fuzz/tests/fuzz/*_fuzzer; do \
	  name=$$(basename $$f); corpus=build-fuzz/corpus/$$name; mkdir -p $$corpus; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $$corpus tests/fuzz/corpus/$$name 2>build-fuzz/$$name.log \
	    || { tail -50 build-fuzz/$$name.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' build-fuzz/$$name.log; \
	done

bench: build
	@SPILLWAY_SETUP_BENCH=1 bash scripts/setup.sh
	@bash bench/run.sh build

# The container image (docker/Dockerfile: spillwayd and the spillway CLI) as $(IMAGE).
# Needs a reachable Docker engine; without one it says so and fails.
.PHONY: docker
IMAGE ?= spillway:latest
docker:
	@if ! command -v docker >/dev/null; then \
	  echo "make docker: the docker CLI is not installed; install Docker (or run this where it is) to build $(IMAGE)" >&2; exit 1; fi
	@if ! docker info >/dev/null 2>&1; then \
	  echo "make docker: no Docker engine reachable ('docker info' failed): start the daemon or set DOCKER_HOST, then retry" >&2; exit 1; fi
	DOCKER_BUILDKIT=1 docker build -f docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf build build-asan build-tsan build-fuzz
