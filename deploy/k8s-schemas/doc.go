// Command k8s-schemas turns the Kubernetes OpenAPI v2 spec (swagger.json) into
// the standalone, strict JSON schemas kubeconform reads, so that `make test` can
// validate the Helm chart without downloading schemas from the internet.
//
// It lives in its own module, outside the product's go.mod, and has no
// dependencies. The output matches what kubeconform expects of
// yannh/kubernetes-json-schema's "-standalone-strict" folders: one file per
// group/version/kind, named {{.ResourceKind}}{{.KindSuffix}}.json (for example
// statefulset-apps-v1.json), every $ref inlined, and additionalProperties false
// on every object that lists its properties.
//
//	go run . -swagger $(go mod download -json k8s.io/kubernetes@v1.34.2 | jq -r .Dir)/api/openapi-spec/swagger.json \
//	    -out .cache/k8s-schemas/v1.34.2-standalone-strict
package main
