# argus: `make demo` and `make test` work on a fresh machine; everything they need is set up here.

PYTHON      ?= python3
VENV        := .venv
TORCH       := 2.11.0
VENV_STAMP  := $(VENV)/.argus-torch-$(TORCH)
ARGUS       := target/release/argus
CARGO       ?= cargo

.PHONY: all demo test build bench fuzz venv tools ganache lint check-deps clean-venv

all: build

# libtorch comes from PyPI's torch wheel, installed once into a git-ignored venv; `.venv/libtorch`
# points at it and .cargo/config.toml tells tch-sys to use it.
$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==$(TORCH) pyarrow
	ln -sfn "$$($(VENV)/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" $(VENV)/libtorch
	touch $@

venv: $(VENV_STAMP)

# promtool validates the /metrics exposition in the tests (Debian's prometheus package).
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null; }

# A real Ethereum node for the chain-monitor tests: ganache from npm, pinned by package-lock.json.
GANACHE := deploy/ganache/node_modules/.bin/ganache
$(GANACHE): deploy/ganache/package.json deploy/ganache/package-lock.json
	cd deploy/ganache && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ganache: $(GANACHE)

build: venv
	$(CARGO) build --release -p argus-engine

demo: build
	./$(ARGUS) demo

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-deps:
	bash scripts/check-deps.sh

test: venv tools ganache build lint check-deps
	$(CARGO) test --workspace --release

bench: venv
	$(CARGO) bench --workspace

# Coverage-guided fuzzing of the feeds' decoders (libFuzzer via cargo-fuzz; needs the nightly
# toolchain and `cargo install cargo-fuzz`, so it is not part of `make test`, which runs the
# mutation fuzzer feeds/tests/fuzz_frames.rs instead). Seeds come from the bundled captures.
FUZZ_SECONDS ?= 60
fuzz:
	python3 scripts/fuzz_seeds.py feeds/fuzz/corpus
	cd feeds && for t in binance venues okx bybit coinbase kraken chain; do \
		cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; done

clean-venv:
	rm -rf $(VENV)
