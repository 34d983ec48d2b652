package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
)

// archiveFlags add a log's archived segments to what an offline command reads
// from --db: from a directory, or from the archive a configuration file names.
type archiveFlags struct {
	dir, config string
}

func (a *archiveFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&a.dir, "archive", "", "with --db: also read the segments archived in this directory")
	fl.StringVar(&a.config, "archive-config", "", "with --db: also read the segments in the archive this configuration file's audit.retention names (its keys from its secret provider)")
}

// errNotWithExport refuses the archive flags where they would be ignored.
var errNotWithExport = errors.New("--archive and --archive-config go with --db: an export or a running gateway holds what it holds")

func (a *archiveFlags) set() bool { return a.dir != "" || a.config != "" }

// files is the log at db as files in log order, archived segments first; done
// removes what was fetched from an object store.
func (a *archiveFlags) files(ctx context.Context, db string) (files []string, done func(), err error) {
	done = func() {}
	var store archive.Store
	switch {
	case db == "" && a.set():
		return nil, done, errNotWithExport
	case a.dir != "" && a.config != "":
		return nil, done, errors.New("give --archive or --archive-config, not both")
	case a.dir != "":
		store = archive.Dir{Path: a.dir}
	case a.config != "":
		cfg, err := loadConfig(a.config, "")
		if err != nil {
			return nil, done, err
		}
		if cfg.Audit.Retention == nil {
			return nil, done, errors.New(a.config + ": no audit.retention, so no archive")
		}
		p, err := openSecrets(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, done, err
		}
		if store, err = archiveStore(ctx, cfg, p); err != nil {
			return nil, done, err
		}
	default:
		files, err := audit.Files(db)
		return files, done, err
	}
	tmp, err := os.MkdirTemp("", "consentgate-archive-*")
	if err != nil {
		return nil, done, err
	}
	done = func() { os.RemoveAll(tmp) }
	if files, err = archive.Files(ctx, store, db, tmp); err != nil {
		done()
		return nil, func() {}, err
	}
	return files, done, nil
}
