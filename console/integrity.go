package console

import (
	"context"
	"io"
	"net/http"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
)

// integrityData is the integrity page: the log's head, and a verification's
// result when one was asked for.
type integrityData struct {
	LogID string
	Head  audit.Head
	// Checkpoint is the last signed checkpoint (nil: none within reach).
	Checkpoint *audit.Record
	Stats      audit.Stats
	Ran        bool
	Report     audit.Report
	Error      string
}

func (c *console) integrity(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "integrity.html", "Integrity", c.integrityNow(r.Context()))
}

func (c *console) integrityNow(ctx context.Context) integrityData {
	d := integrityData{LogID: c.o.Audit.LogID(), Head: c.o.Audit.Head(), Stats: c.o.Audit.Stats()}
	// Checkpoints follow every 1,000 records at most (by default), or seal a
	// segment: the last is near the head.
	p, err := c.o.Audit.Timeline(ctx, audit.Query{Kind: audit.KindCheckpoint, Limit: 1, MaxScan: 20_000})
	if err == nil && len(p.Records) == 1 {
		d.Checkpoint = &p.Records[0]
	}
	return d
}

// verify runs a verification of the live log: its export, signed now, read back
// through the verifier as it is written, so the whole log is never in memory.
// The run is recorded, with its result.
func (c *console) verify(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) || !c.heavy(w, r) {
		return
	}
	defer c.done()
	d := c.integrityNow(r.Context())
	d.Ran = true
	rep, err := verifyLive(r.Context(), c.o.Audit)
	d.Report = rep
	result := "verified"
	if err != nil {
		d.Error, result = err.Error(), "failed"
	}
	who, _ := identity.From(r.Context())
	if _, aerr := c.o.Audit.Append(r.Context(), audit.Record{Kind: audit.KindAdmin, App: who.Name,
		Detail: map[string]string{"action": "console verify", "role": who.Role, "result": result}}); aerr != nil {
		http.Error(w, "the audit log cannot record this verification, so it was not shown", http.StatusServiceUnavailable)
		return
	}
	c.render(w, r, "integrity.html", "Integrity", d)
}

func verifyLive(ctx context.Context, l *audit.Log) (audit.Report, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.Export(ctx, pw, audit.Filter{})) }()
	defer pr.Close()
	return audit.Verify(pr, l.PublicKey())
}
