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
	LogID  string
	Head   audit.Head
	Stats  audit.Stats
	Ran    bool
	Report audit.Report
	Error  string
}

func (c *console) integrity(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "integrity.html", "Integrity", c.integrityNow())
}

func (c *console) integrityNow() integrityData {
	return integrityData{LogID: c.o.Audit.LogID(), Head: c.o.Audit.Head(), Stats: c.o.Audit.Stats()}
}

// verify runs a verification of the live log: its export, signed now, read back
// through the verifier as it is written, so the whole log is never in memory.
// The run is recorded, with its result.
func (c *console) verify(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) || !c.heavy(w, r) {
		return
	}
	defer c.done()
	d := c.integrityNow()
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
