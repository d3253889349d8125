# The README's two commands:
#   make run    installs what is missing, then starts hlsd with its defaults
#   make test   installs what is missing, then runs the whole test suite
# Rust itself (cargo) is the user's to install: https://rustup.rs

CARGO ?= cargo
ARGS ?=

# Build: the system FFmpeg (5.1 on Debian 12) with its headers, found by pkg-config.
BUILD_PKGS := libavformat-dev libavcodec-dev libavfilter-dev libavdevice-dev \
              libavutil-dev libswscale-dev libswresample-dev pkg-config clang
# Tests and benchmarks only: the ffmpeg/ffprobe CLIs make fixtures and check
# outputs independently (the server itself never runs them).
# GStreamer plays the HEVC codec group as GStreamer-based players do.
TEST_PKGS := ffmpeg chromium openssl gstreamer1.0-tools gstreamer1.0-plugins-good \
             gstreamer1.0-plugins-bad gstreamer1.0-libav

# Fuzzing: cargo-fuzz (libFuzzer + AddressSanitizer) on the stable
# toolchain, with RUSTC_BOOTSTRAP=1 for the -Z flags it passes. Each target
# runs FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request_path playlist_rewrite multipart_probe form_fields forwarded srt_config video_packets

.PHONY: run test soak test-garage lint bench fuzz fuzz-ci fuzz-deps deps test-deps check-cargo

run: deps check-cargo
	$(CARGO) run --release --bin hlsd -- $(ARGS)

# --no-fail-fast: one failing test binary never hides the others.
# --features failpoints: the crash-point test kills the server between
# durable steps (a release build never has them). The integration tests are
# one binary (tests/suite.rs) whose tests mostly wait on servers, clients
# and I/O: TEST_THREADS of them run at once (measured on 2 cores; see
# README). Set through RUST_TEST_THREADS rather than `-- --test-threads`,
# which the criterion benches' test mode refuses.
TEST_THREADS ?= 6
test: deps test-deps check-cargo
	RUST_TEST_THREADS=$(TEST_THREADS) $(CARGO) test --all-targets --features failpoints --no-fail-fast

# The model test with more seeds and steps than `make test` runs:
# `make soak SEEDS=1-200 STEPS=60` (a seed that fails is printed; run it
# alone with SEEDS=<seed>).
SEEDS ?= 1-50
STEPS ?= 40
soak: deps test-deps check-cargo
	HLSD_MODEL_SEEDS=$(SEEDS) HLSD_MODEL_STEPS=$(STEPS) $(CARGO) test --features failpoints \
	  --test suite model:: -- --nocapture

# The object-store tests against Garage (a real distributed store) instead
# of s3s-fs: builds garage once (cargo install, about ten minutes), then
# runs them with a one-node cluster per test. Not part of `make test`.
GARAGE_VERSION := 2.5.0
test-garage: deps test-deps check-cargo
	@if ! { garage --version 2>/dev/null || "$${CARGO_HOME:-$$HOME/.cargo}/bin/garage" --version 2>/dev/null; } | grep -q '$(GARAGE_VERSION)'; then \
	  echo "cargo install garage $(GARAGE_VERSION)"; \
	  $(CARGO) install garage@$(GARAGE_VERSION) --locked; \
	fi
	HLSD_TEST_S3=garage $(CARGO) test --no-fail-fast --test suite s3_

lint: deps check-cargo
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features failpoints -- -D warnings

# nginx-light and wrk only for benches/serve_vs_nginx.sh.
BENCH_PKGS := nginx-light libnginx-mod-rtmp wrk curl mesa-vulkan-drivers

bench: deps test-deps check-cargo
	@$(call apt_install,$(BENCH_PKGS))
	$(CARGO) bench --bench segmenting
	$(CARGO) bench --bench cli_compare
	benches/job_memory.sh
	benches/serve_vs_nginx.sh
	benches/store_ready.sh
	benches/hdr_cost.sh
	benches/tonemap_operators.sh
	benches/live_latency.sh

deps:
	@$(call apt_install,$(BUILD_PKGS))

# s3s-fs: a real S3 server (SigV4, presigned URLs, conditional PUTs) for
# the object-store tests; built once by cargo (a few minutes), then reused.
S3S_FS_VERSION := 0.14.1

test-deps:
	@$(call apt_install,$(TEST_PKGS))
	@if ! { s3s-fs --version 2>/dev/null || "$${CARGO_HOME:-$$HOME/.cargo}/bin/s3s-fs" --version 2>/dev/null; } | grep -qx 's3s-fs $(S3S_FS_VERSION)'; then \
	  echo "cargo install s3s-fs $(S3S_FS_VERSION)"; \
	  $(CARGO) install s3s-fs@$(S3S_FS_VERSION) --features binary --locked; \
	fi
	@# Node may come from elsewhere (nodesource bundles npm): only when the
	@# commands are missing are Debian's packages installed.
	@command -v npm >/dev/null 2>&1 || { $(call apt_install,nodejs npm); }
	@# playwright-core and video.js for the browser tests, from the lock file
	@# (never a browser download: Chromium is Debian's).
	@if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then \
	  echo "npm ci in tests/browser"; (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) && touch tests/browser/node_modules; \
	fi

check-cargo:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "cargo not found: install Rust first (https://rustup.rs), then re-run make."; exit 1; }

# Installs the Debian/Ubuntu packages in $(1) that are not installed yet;
# does nothing (and needs no root) when everything is there.
define apt_install
missing=""; \
for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then \
  echo "installing:$$missing"; \
  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
  command -v apt-get >/dev/null 2>&1 || { echo "apt-get not found: install$$missing with your package manager"; exit 1; }; \
  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
fi
endef

fuzz-deps: deps check-cargo
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz: fuzz-deps
	cd tests/fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O $$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 || exit 1; \
	done

# CI's bounded, reproducible run: a fixed seed and a fixed number of inputs
# per target (a few minutes with the instrumented build).
fuzz-ci: fuzz-deps
	cd tests/fuzz && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O request_path -- -seed=1 -runs=1000000 -timeout=10 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O playlist_rewrite -- -seed=1 -runs=500000 -timeout=10 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O multipart_probe -- -seed=1 -runs=10000 -timeout=10 -rss_limit_mb=2048 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O form_fields -- -seed=1 -runs=100000 -timeout=10 -rss_limit_mb=2048 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O forwarded -- -seed=1 -runs=500000 -timeout=10 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O srt_config -- -seed=1 -runs=300000 -timeout=10 -rss_limit_mb=2048 && \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir . -O video_packets -- -seed=1 -runs=500000 -timeout=10
