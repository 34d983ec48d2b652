// Package telemetry sets up where the gateway's spans go: a batched OTLP/HTTP
// exporter with sampling, as tracing: in the configuration asks. What is
// traced, and what never is, belongs to the pipeline (proxy/trace.go).
package telemetry
