package telemetry

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
)

// NewTracerProvider builds the span pipeline cfg.Tracing asks for: batched
// OTLP/HTTP export, sampled at SampleRatio unless the app's traceparent says.
// It returns nil when tracing is off. Shut it down on exit to flush spans.
func NewTracerProvider(ctx context.Context, cfg *configs.Config) (*sdktrace.TracerProvider, error) {
	t := cfg.Tracing
	if t.Endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(strings.TrimSuffix(t.Endpoint, "/") + "/v1/traces")
	if err != nil {
		return nil, fmt.Errorf("%s: tracing.endpoint: %w", cfg.File, err)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	} else if t.CAFile != "" {
		pool, err := certs.LoadPool(cfg.ResolvePath(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("%s: tracing.ca_file: %w", cfg.File, err)
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, CipherSuites: certs.AEADSuites}))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", t.ServiceName), attribute.String("service.instance.id", cfg.Node))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SampleRatio))),
	), nil
}
