package policy

import (
	"time"
)

// maxHistory bounds the revisions an engine remembers for the console's diff.
const maxHistory = 20

// Revision is one policy revision as the console shows it: its id, when it was
// loaded, and its text by file.
type Revision struct {
	ID       string
	LoadedAt time.Time
	Sources  map[string]string
}

func (r *revision) public() Revision {
	return Revision{ID: r.id, LoadedAt: r.loadedAt, Sources: r.sources}
}

// remember adds rev to the history (with mu held), newest last.
func (e *Engine) remember(rev *revision) {
	if n := len(e.history); n > 0 && e.history[n-1].ID == rev.id {
		return
	}
	e.history = append(e.history, rev.public())
	if len(e.history) > maxHistory {
		e.history = e.history[len(e.history)-maxHistory:]
	}
}

// History is the revisions this engine has served since it started, oldest
// first (the last 20); the last is the one in service.
func (e *Engine) History() []Revision {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Revision(nil), e.history...)
}

// Current is the revision in service.
func (e *Engine) Current() Revision { return e.cur.Load().public() }

// Source is where the engine loads its policy from.
func (e *Engine) Source() Source { return e.opts.Source }
