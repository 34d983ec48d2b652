package policy

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the policy when a file in the policy directory changes (or, for a
// URL bundle, every poll interval) until ctx ends. Editors write files in several
// steps, so changes are debounced.
func (e *Engine) Watch(ctx context.Context, poll time.Duration) error {
	src := e.opts.Source
	if src.Dir == "" {
		if poll <= 0 {
			return nil
		}
		go func() {
			t := time.NewTicker(poll)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					e.Reload(ctx)
				}
			}
		}()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := addDirs(w, src.Dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		// An edit made after the policy was loaded but before the watch began
		// sent no event: look once more now that one would.
		e.Reload(ctx)
		const settle = 200 * time.Millisecond
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if relevant(ev.Name) {
					timer = time.After(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				e.log.Warn("policy watch error", "error", err.Error())
			case <-timer:
				timer = nil
				addDirs(w, src.Dir) // new subdirectories
				e.Reload(ctx)
			}
		}
	}()
	return nil
}

func relevant(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") && base != ".manifest" {
		return false // editor swap files
	}
	switch filepath.Ext(base) {
	case ".rego", ".json", ".yaml", ".yml", "":
		return !strings.HasSuffix(base, "_test.rego")
	}
	return false
}

func addDirs(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}
