package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/stream"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// openStreams makes the audit streams the configuration names (audit.streams),
// not yet running: each with its sink, its TLS and its cursor in data_dir.
func openStreams(ctx context.Context, cfg *configs.Config, p secrets.Provider, l *audit.Log, log *slog.Logger) ([]*stream.Stream, error) {
	var out []*stream.Stream
	for i, sc := range cfg.Audit.Streams {
		field := fmt.Sprintf("audit.streams[%d]", i)
		sink, err := streamSink(ctx, cfg, p, l, &sc, field)
		if err != nil {
			return nil, err
		}
		out = append(out, &stream.Stream{Name: sc.Name, Source: l, Sink: sink, Batch: sc.Batch, Logger: log,
			Cursor: stream.NewCursor(filepath.Join(cfg.DataDir, "audit-streams", sc.Name+".cursor"))})
	}
	return out, nil
}

func streamSink(ctx context.Context, cfg *configs.Config, p secrets.Provider, l *audit.Log, sc *configs.AuditStream, field string) (stream.Sink, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if sc.CAFile != "" {
		pool, err := certs.LoadPool(cfg.ResolvePath(sc.CAFile))
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		tc.RootCAs = pool
	}
	if sc.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.ResolvePath(sc.CertFile), cfg.ResolvePath(sc.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: %w", field, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	var token string
	if sc.Token != "" {
		t, err := readKey(ctx, p, field+".token", sc.Token)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(t)
	}
	client := stream.NewClient(tc)
	switch sc.Type {
	case "syslog":
		return &stream.Syslog{Address: sc.Address, TLS: tc, Hostname: cfg.Node}, nil
	case "otlp":
		return &stream.OTLP{URL: sc.URL, Node: cfg.Node, LogID: l.LogID(), Client: client}, nil
	default:
		return &stream.HTTP{URL: sc.URL, Format: sc.Format, Token: token, Host: cfg.Node, Client: client}, nil
	}
}

// runStreams delivers the audit log to every stream until ctx ends; a stream
// whose cursor cannot be kept, or is past the log's head, stops, says so, and
// shows as down.
func runStreams(ctx context.Context, streams []*stream.Stream, log *slog.Logger) (wait func()) {
	done := make(chan struct{}, len(streams))
	for _, s := range streams {
		go func() {
			defer func() { done <- struct{}{} }()
			defer s.Sink.Close()
			if err := s.Run(ctx); err != nil {
				log.Error("audit stream stopped: records are no longer delivered to it", "stream", s.Name, "error", err.Error())
			}
		}()
	}
	return func() {
		for range streams {
			<-done
		}
	}
}
