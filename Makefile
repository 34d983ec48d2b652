# consentgate: `make test` is what CI runs (.ci/run). Tools the checks need are
# installed once into .cache/bin at pinned versions and reused.
GO ?= go
BIN := $(abspath .cache/bin)
STATICCHECK_VERSION := v0.8.2

.PHONY: test test-deps vet fmt-check lint build dev dev-vault vault clean-dev

test: test-deps vault vet fmt-check lint
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

# The Vault server the integration tests run (and `dev --vault`): built once
# into .cache/bin/vault from deploy/vault-dev (~11 min cold), then reused.
vault:
	@deploy/scripts/build-vault.sh

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

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
