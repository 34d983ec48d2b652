#!/usr/bin/env bash
# Renders the Helm chart with the real `helm template` and validates every
# object with kubeconform against the Kubernetes schemas generated from the
# OpenAPI spec (deploy/k8s-schemas), for the default values and each values
# variant in the chart's ci/ folder. Then proves the check can fail: broken
# copies of the rendered chart must be rejected, each for its own reason.
#
# `make chart-check` installs the tools and generates the schemas first and
# passes them in: HELM, KUBECONFORM, SCHEMAS (a folder of *.json schemas),
# KUBE_VERSION (e.g. 1.34.2).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
chart="$root/deploy/helm/consentgate"
: "${HELM:?}" "${KUBECONFORM:?}" "${SCHEMAS:?}" "${KUBE_VERSION:?}"
location="$SCHEMAS/{{.ResourceKind}}{{.KindSuffix}}.json"

# Helm's own state stays in .cache, never in $HOME; nothing is downloaded.
export HELM_CACHE_HOME="$root/.cache/helm/cache" HELM_CONFIG_HOME="$root/.cache/helm/config" HELM_DATA_HOME="$root/.cache/helm/data"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "chart-check: $*" >&2
	exit 1
}

render() { # name, extra helm args...
	local name="$1"
	shift
	"$HELM" template cg "$chart" --namespace egress --kube-version "$KUBE_VERSION" "$@" >"$tmp/$name.yaml" ||
		fail "helm template ($name) failed"
}

validate() { # file
	"$KUBECONFORM" -strict -summary -schema-location "$location" "$1"
}

"$HELM" lint --strict "$chart" --kube-version "$KUBE_VERSION" >"$tmp/lint.txt" 2>&1 || {
	cat "$tmp/lint.txt" >&2
	fail "helm lint --strict failed"
}

render defaults
variants=(defaults)
for values in "$chart"/ci/*-values.yaml; do
	name="$(basename "$values" -values.yaml)"
	render "$name" -f "$values"
	variants+=("$name")
done
for name in "${variants[@]}"; do
	summary="$(validate "$tmp/$name.yaml")" || fail "kubeconform rejected the chart rendered with $name values:
$summary"
	echo "chart-check: $name: $summary"
	# Every object the chart renders must have been checked against a schema:
	# kubeconform's summary counts as many Valid as documents, none Skipped.
	docs="$(grep -c '^kind: ' "$tmp/$name.yaml")"
	[[ "$summary" == *"Valid: $docs, Invalid: 0, Errors: 0, Skipped: 0"* ]] ||
		fail "$name: $docs objects rendered, but kubeconform says: $summary"
done

# The check must be able to fail. Each case breaks a copy of the default
# rendering with sed and names what kubeconform must say about it.
broken() { # name, sed expression, expected message
	local name="$1" expr="$2" want="$3" out
	sed -e "$expr" "$tmp/defaults.yaml" >"$tmp/broken.yaml"
	cmp -s "$tmp/defaults.yaml" "$tmp/broken.yaml" && fail "broken case '$name' changed nothing: update its sed expression"
	if out="$(validate "$tmp/broken.yaml" 2>&1)"; then
		fail "kubeconform accepted the broken case '$name'"
	fi
	[[ "$out" == *"$want"* ]] || fail "broken case '$name': kubeconform did not say \"$want\":
$out"
	echo "chart-check: rejected as expected: $name"
}
broken "unknown field" 's/^  serviceName: /  serviceNmae: /' "additional properties 'serviceNmae' not allowed"
broken "unknown nested field" 's/^            readOnlyRootFilesystem: true$/            readOnlyRootFilesystem: true\n            readOnlyRootFS: true/' "additional properties 'readOnlyRootFS' not allowed"
broken "string for an integer" 's/^  replicas: 1$/  replicas: "1"/' "at '/spec/replicas': got string, want null or integer"
broken "string for a boolean" 's/^      automountServiceAccountToken: true$/      automountServiceAccountToken: "yes"/' "got string, want null or boolean"
broken "list for a map" 's/^  maxUnavailable: 1$/  maxUnavailable: [1]/' "at '/spec/maxUnavailable'"
broken "unknown kind" 's/^kind: PodDisruptionBudget$/kind: PodDisruptionBudgetX/' "could not find schema for PodDisruptionBudgetX"

# Helm's own guard: no Vault role, no chart.
if "$HELM" template cg "$chart" --set vault.role= >"$tmp/out.txt" 2>&1; then
	fail "helm rendered the chart without vault.role"
fi
grep -q "vault.role is required" "$tmp/out.txt" || fail "helm failed without vault.role, but not with the chart's message: $(cat "$tmp/out.txt")"
# Several replicas must share the consent registry.
if "$HELM" template cg "$chart" --set replicaCount=2 >"$tmp/out.txt" 2>&1; then
	fail "helm rendered two replicas with per-pod bbolt consent registries"
fi
grep -q "needs consents.backend: postgres" "$tmp/out.txt" || fail "helm refused two bbolt replicas, but not with the chart's message: $(cat "$tmp/out.txt")"
echo "chart-check: ok"
