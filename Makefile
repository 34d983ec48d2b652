# consentgate: `make test` is what CI runs (.ci/run). Tools the checks need are
# installed once into .cache/bin at pinned versions and reused.
GO ?= go
BIN := $(abspath .cache/bin)
STATICCHECK_VERSION := v0.8.2
# v1.9.0 cannot be installed here: the proxy refuses the golang.org/x/telemetry
# version it requires.
GOVULNCHECK_VERSION := v1.8.0
# The chart check: helm and kubeconform at pinned tags, and the Kubernetes
# version whose OpenAPI spec (in the k8s.io/kubernetes module) the schemas come from.
HELM_VERSION := v3.19.5
KUBECONFORM_VERSION := v0.7.0
KUBE_VERSION := 1.34.2
SCHEMAS := $(abspath .cache/k8s-schemas/v$(KUBE_VERSION)-standalone-strict)

.PHONY: s3 test test-deps vet fmt-check lint vulncheck chart-check vault build dev dev-vault clean-dev fuzz reliability bench bench-quick opa docs

# ./cmd/consentgate first: its end-to-end tests are the longest package by far,
# and started first they overlap with all the others (2 cores).
test: test-deps vault s3 vet fmt-check lint vulncheck chart-check
	$(GO) test -race ./cmd/consentgate ./...
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

# The Vault server the integration tests run (and `dev --vault`): built once
# into .cache/bin/vault from deploy/vault-dev (~11 min cold), then reused.
vault:
	@GO=$(GO) deploy/scripts/build-vault.sh

# The S3-compatible store the audit archive tests run (internal/s3dev): the
# Versity S3 Gateway, Apache 2.0, built once into .cache/bin (about a minute).
VERSITYGW_VERSION := v1.8.0
s3: $(BIN)/versitygw
$(BIN)/versitygw:
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Stock opa, the very version the gateway embeds, for `opa test --explain
# fails`, `opa eval` and editors: built once into .cache/bin/opa.
# docs regenerates what the code generates: the CLI reference (docs/cli, from
# the cobra commands) and the JSON Schemas of consentgate.yaml and vendor
# profiles (docs/schema, from the configs types). Tests fail when they drift.
# It also retakes the console's screenshots (docs/console) in a real browser.
docs: test-deps
	$(GO) test ./cmd/consentgate -run '^(TestCLIReferenceIsCurrent|TestDevConsoleInABrowser)$$' -count=1 -update
	$(GO) test ./internal/schema -run '^TestSchemasAreCurrent$$' -count=1 -update

opa: $(BIN)/opa
$(BIN)/opa:
	GOBIN=$(BIN) $(GO) install github.com/open-policy-agent/opa@$$($(GO) list -m -f '{{.Version}}' github.com/open-policy-agent/opa)

# govulncheck on ./...: fails when our code calls a symbol with a known
# vulnerability, in a dependency or in the standard library of the Go that runs
# it; there are no exceptions (bump the module, or Go). The database is
# vuln.go.dev when reachable, else the committed snapshot in deploy/vulndb (see
# deploy/scripts/vulncheck.sh; it also proves the check can fail). About 10 s warm.
vulncheck: $(BIN)/.govulncheck-$(GOVULNCHECK_VERSION)
	cd deploy/vulndb && $(GO) vet ./... && $(GO) test ./...
	GO=$(GO) GOVULNCHECK=$(BIN)/govulncheck deploy/scripts/vulncheck.sh

$(BIN)/.govulncheck-$(GOVULNCHECK_VERSION):
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	touch $@

# Renders deploy/helm/consentgate with the real `helm template` and validates it
# with kubeconform, offline (see deploy/scripts/chart-check.sh). Warm: a few
# seconds; cold: helm ~6 min to build, kubeconform and the schemas seconds.
chart-check: $(BIN)/.helm-$(HELM_VERSION) $(BIN)/.kubeconform-$(KUBECONFORM_VERSION) $(SCHEMAS)
	cd deploy/k8s-schemas && $(GO) vet ./... && $(GO) test ./...
	HELM=$(BIN)/helm KUBECONFORM=$(BIN)/kubeconform SCHEMAS=$(SCHEMAS) KUBE_VERSION=$(KUBE_VERSION) \
		deploy/scripts/chart-check.sh

# The stamp files carry the version, so changing a pin above reinstalls. helm's
# version string is set at link time by its release build; -X does the same here.
$(BIN)/.helm-$(HELM_VERSION):
	GOBIN=$(BIN) $(GO) install -ldflags '-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)' \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

$(BIN)/.kubeconform-$(KUBECONFORM_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $@

# kubeconform would download its schemas from GitHub; the network here (and in
# many CI sandboxes) only reaches the Go module proxy. The k8s.io/kubernetes
# module carries api/openapi-spec/swagger.json, which deploy/k8s-schemas turns
# into kubeconform's standalone strict schemas, once (regenerated when the
# converter changes). `go mod download` runs outside any module, so no go.sum changes.
$(SCHEMAS): $(wildcard deploy/k8s-schemas/*.go) deploy/k8s-schemas/go.mod
	dir="$$(cd "$${TMPDIR:-/tmp}" && $(GO) mod download -json k8s.io/kubernetes@v$(KUBE_VERSION) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')"; \
	test -n "$$dir" || { echo "go mod download k8s.io/kubernetes@v$(KUBE_VERSION) gave no Dir" >&2; exit 1; }; \
	cd deploy/k8s-schemas && $(GO) run . -swagger "$$dir/api/openapi-spec/swagger.json" -out $@

build:
	$(GO) build -trimpath -o consentgate ./cmd/consentgate

dev:
	$(GO) run ./cmd/consentgate dev

# dev with the secrets in a local dev Vault (AppRole) instead of secrets.yaml.
dev-vault: vault
	$(GO) run ./cmd/consentgate dev --vault

# Removes the dev PKI, secrets and state; the next `dev` generates new ones.
clean-dev:
	rm -rf .consentgate

# Runs every fuzz target for FUZZTIME each (`make test` runs their seed corpora
# as ordinary tests). A crash is saved under the package's testdata/fuzz: commit
# it, and it stays a regression test.
FUZZTIME ?= 30s
FUZZ_TARGETS := configs:FuzzLoad certs:FuzzICO proxy:FuzzRouteMatch proxy:FuzzRequestScanner \
	minimise:FuzzMinimize minimise:FuzzMinimizeMatchesReference proxy:FuzzRequestMinimisation audit:FuzzVerifyModifiedExport audit:FuzzVerifyArbitrary

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg/; \
	done

# The reliability suite at full length; `make test` runs each of its checks
# briefly. 20 SIGKILLs under load, every vendor fault (hang, reset, 5xx, slow
# body, malformed JSON, wrong certificates), a Vault outage and its recovery
# (hence the vault prerequisite), policy reloads every 100 ms under
# load for a minute, a SOAK-long soak at SOAK_RATE calls a second across the
# five vendors, and the audit stream's syslog receiver away for a minute under
# load (10 s in make test). Without -race (make test has it), so the soak measures the
# memory of a real build. See cmd/consentgate/reliability_test.go for the knobs.
SOAK ?= 10m
SOAK_RATE ?= 20
reliability: vault
	CONSENTGATE_RELIABILITY=full CONSENTGATE_SOAK_DURATION=$(SOAK) CONSENTGATE_SOAK_RATE=$(SOAK_RATE) \
		$(GO) test -count=1 -timeout 60m -v -run '^(TestReliability|TestFault)' ./cmd/consentgate/ ./internal/sandbox/
	CONSENTGATE_OUTAGE=1m $(GO) test -count=1 -v -run '^TestSyslogReceiverAwayUnderLoad$$' ./audit/stream/

# Measures consentgate (strict and async audit, and strict tokenizing the birth
# number) against the direct vendor call
# and nginx as an mTLS reverse proxy, on loopback, and writes a dated section
# of bench/RESULTS.md. About 5 minutes; shorter runs for development, e.g.
#   make bench BENCH_FLAGS='-duration 2s -levels 1,16 -targets direct,consentgate-strict'
# (see go run ./bench -h). Run it on an otherwise idle machine.
BENCH_FLAGS ?=
bench: s3
	@deploy/scripts/install-nginx.sh
	$(GO) build -trimpath -o $(BIN)/consentgate-bench ./cmd/consentgate
	$(GO) run ./bench -consentgate $(BIN)/consentgate-bench $(BENCH_FLAGS)

# bench-quick is the comparison issue 16 tracks, in under 4 minutes on 2 cores:
# 20,000 consents, 64 connections, nginx, go-proxy (Go's own floor), both
# consentgate audit modes, the tokenizing one (consentgate-tokens: each call
# tokenizes a birth number) and the streaming one (consentgate-stream: strict,
# its audit log streamed to a SIEM, with the stream's lag when the load stops);
# its last line is one JSON object (-json). It is preliminary by design and
# writes no section to bench/RESULTS.md.
bench-quick:
	$(MAKE) bench BENCH_FLAGS='-targets nginx,go-proxy,consentgate-strict,consentgate-async,consentgate-tokens,consentgate-stream -levels 64 -consents 20000 \
		-duration 20s -warmup 5s -open-duration 0 -idle-conns 0 -fsync-samples 200 -results "" -json $(BENCH_FLAGS)'

