# consentgate: `make test` is what CI runs (.ci/run). Tools the checks need are
# installed once into .cache/bin at pinned versions and reused.
GO ?= go
BIN := $(abspath .cache/bin)
STATICCHECK_VERSION := v0.8.2

.PHONY: test test-deps vet fmt-check lint build dev clean-dev bench

test: test-deps vet fmt-check lint
	$(GO) test -race ./...
	$(GO) run ./cmd/consentgate policy check configs/policies
	$(GO) run ./cmd/consentgate policy test configs/policies

test-deps:
	@deploy/scripts/test-deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@files="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$files" ]; then echo "gofmt would change:"; echo "$$files"; exit 1; fi

lint: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

build:
	$(GO) build -trimpath -o consentgate ./cmd/consentgate

dev:
	$(GO) run ./cmd/consentgate dev

# Removes the dev PKI, secrets and state; the next `dev` generates new ones.
clean-dev:
	rm -rf .consentgate

# Measures consentgate (strict and async audit) against the direct vendor call
# and nginx as an mTLS reverse proxy, on loopback, and writes a dated section
# of bench/RESULTS.md. About 5 minutes; shorter runs for development, e.g.
#   make bench BENCH_FLAGS='-duration 2s -levels 1,16 -targets direct,consentgate-strict'
# (see go run ./bench -h). Run it on an otherwise idle machine.
BENCH_FLAGS ?=
bench:
	@deploy/scripts/install-nginx.sh
	$(GO) build -trimpath -o $(BIN)/consentgate-bench ./cmd/consentgate
	$(GO) run ./bench -consentgate $(BIN)/consentgate-bench $(BENCH_FLAGS)
