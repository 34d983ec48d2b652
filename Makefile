# consentgate: `make test` is what CI runs (.ci/run). Tools the checks need are
# installed once into .cache/bin at pinned versions and reused.
GO ?= go
BIN := $(abspath .cache/bin)
STATICCHECK_VERSION := v0.8.2

.PHONY: test test-deps vet fmt-check lint build dev clean-dev fuzz reliability

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

# Runs every fuzz target for FUZZTIME each (`make test` runs their seed corpora
# as ordinary tests). A crash is saved under the package's testdata/fuzz: commit
# it, and it stays a regression test.
FUZZTIME ?= 30s
FUZZ_TARGETS := configs:FuzzLoad certs:FuzzICO proxy:FuzzRouteMatch proxy:FuzzRequestScanner \
	proxy:FuzzMinimize proxy:FuzzMinimizeMatchesReference audit:FuzzVerifyModifiedExport audit:FuzzVerifyArbitrary

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg/; \
	done

# The reliability suite at full length; `make test` runs each of its checks
# briefly. 20 SIGKILLs under load, every vendor fault (hang, reset, 5xx, slow
# body, malformed JSON, wrong certificates), policy reloads every 100 ms under
# load for a minute, and a SOAK-long soak at SOAK_RATE calls a second across the
# five vendors. Without -race (make test has it), so the soak measures the
# memory of a real build. See cmd/consentgate/reliability_test.go for the knobs.
SOAK ?= 10m
SOAK_RATE ?= 20
reliability:
	CONSENTGATE_RELIABILITY=full CONSENTGATE_SOAK_DURATION=$(SOAK) CONSENTGATE_SOAK_RATE=$(SOAK_RATE) \
		$(GO) test -count=1 -timeout 60m -v -run '^(TestReliability|TestFault)' ./cmd/consentgate/ ./sandbox/
