package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/proxy"
)

// profiles reloads the vendor profiles of a running gateway from its
// configuration file, when a profile or the file that lists them changes and
// on SIGHUP. The whole file is read and checked as at start-up; a file that
// fails is refused, naming file, line and field, and the profiles in service
// keep serving. Settings outside the profiles take effect at a restart.
type profiles struct {
	file, node string
	r          *running
	reloads    *prometheus.CounterVec
	// mu makes a reload (the watch's or SIGHUP's) whole: the gateway, the
	// policy contract and the consents' vendors are set by one reload at a time.
	mu sync.Mutex
}

func newProfiles(file, node string, r *running, reg prometheus.Registerer) *profiles {
	p := &profiles{file: file, node: node, r: r, reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentgate_vendor_profile_reloads_total",
		Help: "Reloads of the vendor profiles, by result (applied, unchanged, refused).",
	}, []string{"result"})}
	reg.MustRegister(p.reloads)
	return p
}

// reload puts the profiles the configuration file lists now in service.
func (p *profiles) reload(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	log := p.r.log
	cfg, err := loadConfig(p.file, p.node)
	if err == nil {
		err = cfg.CheckFiles()
	}
	// The policy in service must fit the new profiles (every operation under
	// every purpose decided, its data naming vendors that exist).
	if err == nil {
		if cerr := p.r.engine.CheckContract(ctx, policyContract(cfg)); cerr != nil {
			err = fmt.Errorf("the policy in service does not fit them: %w", cerr)
		}
	}
	var ch proxy.VendorChanges
	if err == nil {
		ch, err = p.r.gw.ReloadVendors(ctx, cfg.Vendors)
	}
	if err != nil {
		p.reloads.WithLabelValues("refused").Inc()
		log.Error("vendor profiles refused; the profiles in service keep serving", "error", err.Error())
		return err
	}
	// Set even when nothing changed: a reload is also how a failed step of
	// the one before is done again.
	p.r.engine.SetContract(policyContract(cfg))
	var ids []string
	for _, v := range cfg.Vendors {
		ids = append(ids, v.ID)
	}
	if err := p.r.consents.SetVendors(ids, proxy.ErasurePlan(cfg)); err != nil {
		log.Error("consents keep the previous vendor list", "error", err.Error())
	}
	if ch.Empty() {
		p.reloads.WithLabelValues("unchanged").Inc()
		return nil
	}
	p.reloads.WithLabelValues("applied").Inc()
	log.Info("vendor profiles reloaded", "added", ch.Added, "changed", ch.Changed, "removed", ch.Removed)
	if err := systemRecord(ctx, p.r.audit, map[string]string{"event": "vendors-reloaded", "added": strings.Join(ch.Added, ","),
		"changed": strings.Join(ch.Changed, ","), "removed": strings.Join(ch.Removed, ",")}); err != nil {
		log.Error("AUDIT LOG UNWRITABLE: vendor profile reload not recorded", "error", err.Error())
	}
	return nil
}

// files are the configuration file and the profiles it lists, absolute.
func (p *profiles) files() []string {
	out := []string{p.abs(p.file)}
	cfg, err := loadConfig(p.file, p.node)
	if err != nil {
		cfg = p.r.cfg
	}
	for _, v := range cfg.Vendors {
		f := v.File
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(p.file), f)
		}
		out = append(out, p.abs(f))
	}
	return out
}

func (p *profiles) abs(f string) string {
	if a, err := filepath.Abs(f); err == nil {
		return a
	}
	return f
}

// watch reloads when one of files changes, until ctx ends. Editors replace
// files in several steps, so the folders are watched and events settle first.
func (p *profiles) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	files := p.files()
	if err := watchFolders(w, files); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		const settle = 200 * time.Millisecond
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-w.Events:
				if slices.Contains(files, p.abs(ev.Name)) {
					timer = time.After(settle)
				}
			case err := <-w.Errors:
				p.r.log.Error("watching vendor profiles", "error", err.Error())
			case <-timer:
				timer = nil
				if p.reload(ctx) == nil {
					// The file may now list profiles in other folders.
					files = p.files()
					if err := watchFolders(w, files); err != nil {
						p.r.log.Error("watching vendor profiles", "error", err.Error())
					}
				}
			}
		}
	}()
	return nil
}

func watchFolders(w *fsnotify.Watcher, files []string) error {
	for _, f := range files {
		if dir := filepath.Dir(f); !slices.Contains(w.WatchList(), dir) {
			if err := w.Add(dir); err != nil {
				return err
			}
		}
	}
	return nil
}
