package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/audit/stream"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// openRetention is the policy of audit.retention (nil without one). Segments
// wait for every stream to deliver them before they leave the node.
func openRetention(ctx context.Context, cfg *configs.Config, p secrets.Provider, l *audit.Log, streams []*stream.Stream, log *slog.Logger) (*archive.Retention, error) {
	rc := cfg.Audit.Retention
	if rc == nil {
		return nil, nil
	}
	store, err := archiveStore(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	r := &archive.Retention{SegmentDir: audit.SegmentDir(cfg.ResolvePath(cfg.Audit.Path)), Store: store, PublicKey: l.PublicKey(),
		KeepLocal: rc.KeepLocal.Duration, KeepArchive: rc.KeepArchive.Duration, Log: log.With("component", "audit-retention"),
		Idle: retentionIdle}
	if len(streams) > 0 {
		r.Delivered = func() uint64 {
			least := streams[0].Stats().Acked
			for _, s := range streams[1:] {
				least = min(least, s.Stats().Acked)
			}
			return least
		}
	}
	log.Info("audit retention on", "archive", store.String(), "keep_local", rc.KeepLocal.String(), "keep_archive", rc.KeepArchive.String())
	return r, nil
}

// retentionIdle keeps archiving to a quarter of a core at most: it rests three
// times as long as it works, so sealing and uploading do not take the CPU vendor
// calls need (bench/RESULTS.md measures it).
const retentionIdle = 3

// archiveStore is the archive audit.retention names, its keys read from the
// secret provider.
func archiveStore(ctx context.Context, cfg *configs.Config, p secrets.Provider) (archive.Store, error) {
	a := cfg.Audit.Retention.Archive
	if a.S3 == nil {
		dir, segs := filepath.Clean(cfg.ResolvePath(a.Dir)), audit.SegmentDir(cfg.ResolvePath(cfg.Audit.Path))
		if dir == filepath.Clean(segs) || archive.SameFile(dir, segs) {
			return nil, fmt.Errorf("audit.retention.archive.dir: %s is where the sealed segments are: archiving there would delete them", a.Dir)
		}
		return archive.Dir{Path: dir}, nil
	}
	const field = "audit.retention.archive.s3"
	o := archive.S3Options{Endpoint: a.S3.Endpoint, Region: a.S3.Region, Bucket: a.S3.Bucket, Prefix: a.S3.Prefix, ObjectLock: a.S3.ObjectLock}
	var err error
	if o.AccessKey, err = readKey(ctx, p, field+".access_key", a.S3.AccessKey); err != nil {
		return nil, err
	}
	if o.SecretKey, err = readKey(ctx, p, field+".secret_key", a.S3.SecretKey); err != nil {
		return nil, err
	}
	o.AccessKey, o.SecretKey = strings.TrimSpace(o.AccessKey), strings.TrimSpace(o.SecretKey)
	if a.S3.CAFile != "" {
		if o.RootCAs, err = certs.LoadPool(cfg.ResolvePath(a.S3.CAFile)); err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
	}
	return archive.NewS3(o)
}

// registerRetentionMetrics counts what the retention policy did; without one
// (r nil) the counters stay at zero, so that dashboards and alerts find them.
func registerRetentionMetrics(reg prometheus.Registerer, r *archive.Retention) {
	counter := func(name, help string, f func(archive.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			if r == nil {
				return 0
			}
			return float64(f(r.Stats()))
		})
	}
	reg.MustRegister(
		counter("consentgate_audit_segments_archived_total", "Sealed audit segments copied to the archive, verified there and deleted here.",
			func(s archive.Stats) uint64 { return s.Archived }),
		counter("consentgate_audit_segments_expired_total", "Archived audit segments deleted at the end of their retention.",
			func(s archive.Stats) uint64 { return s.Expired }),
		counter("consentgate_audit_retention_failures_total", "Rounds of the audit retention policy that left a due segment on the node.",
			func(s archive.Stats) uint64 { return s.Failures }),
	)
}

// forgetLinkKeys destroys, every interval, the link keys of people no record has
// named for audit.link_retention.
func forgetLinkKeys(ctx context.Context, l *audit.Log, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := l.ForgetLinkKeys(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("audit link keys not destroyed; trying again later", "error", err.Error())
		case n > 0:
			log.Info("audit link keys destroyed: their people's records can no longer be tied to them", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
