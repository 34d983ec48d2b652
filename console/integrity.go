package console

import (
	"context"
	"io"
	"net/http"

	"github.com/consentgate/consentgate/audit"
)

// integrityData is the integrity page: the log's head, and a verification's
// result when one was asked for.
type integrityData struct {
	LogID string
	Head  audit.Head
	// Checkpoint is the last signed checkpoint (nil: none within the last
	// Within records).
	Checkpoint *audit.Record
	Within     int
	Stats      audit.Stats
	Ran        bool
	Report     audit.Report
	Error      string
}

func (c *console) integrity(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "integrity.html", "Integrity", c.integrityNow(r.Context()))
}

// checkpointReach is how far back from a record its vouching checkpoint may
// be, and the last one from the head: a checkpoint follows every
// CheckpointEvery records at most.
func (c *console) checkpointReach() int { return c.o.Audit.CheckpointEvery() + 100 }

func (c *console) integrityNow(ctx context.Context) integrityData {
	d := integrityData{LogID: c.o.Audit.LogID(), Head: c.o.Audit.Head(), Stats: c.o.Audit.Stats(), Within: c.checkpointReach()}
	// A checkpoint follows every CheckpointEvery records at most, or seals a
	// segment: the last is near the head.
	p, err := c.o.Audit.Timeline(ctx, audit.Query{Kind: audit.KindCheckpoint, Limit: 1, MaxScan: d.Within})
	if err == nil && len(p.Records) == 1 {
		d.Checkpoint = &p.Records[0]
	}
	return d
}

// verify runs a verification of the live log: its export, signed now, read back
// through the verifier as it is written, so the whole log is never in memory.
// The run is recorded before it starts, and its result after.
func (c *console) verify(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	release, ok := c.acquire(w, r, c.reading, busyReading)
	if !ok {
		return
	}
	defer release()
	if !c.record(w, r, "verify", audit.Record{}) {
		return
	}
	d := c.integrityNow(r.Context())
	d.Ran = true
	rep, err := readVerified(r.Context(), c.o.Audit, nil, nil)
	d.Report = rep
	result := "verified"
	if err != nil {
		d.Error, result = err.Error(), "failed"
	}
	if !c.record(w, r, "verify result", audit.Record{Detail: map[string]string{"result": result}}) {
		return
	}
	c.render(w, r, "integrity.html", "Integrity", d)
}

// readVerified reads the live log's export (with the archived segments
// before it, if any) through the verifier and, when read is not nil, through
// read at the same time: the whole log is never in memory, and nothing read
// counts unless all of it verifies.
func readVerified(ctx context.Context, l *audit.Log, archived []string, read func(io.Reader) error) (audit.Report, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.ExportWithArchived(ctx, pw, audit.Filter{}, archived)) }()
	defer pr.Close()
	if read == nil {
		return audit.Verify(pr, l.PublicKey())
	}
	vr, vw := io.Pipe()
	type verified struct {
		rep audit.Report
		err error
	}
	done := make(chan verified, 1)
	go func() {
		rep, err := audit.Verify(vr, l.PublicKey())
		io.Copy(io.Discard, vr) // what Verify left, so the tee below never waits
		done <- verified{rep, err}
	}()
	err := read(io.TeeReader(pr, vw))
	vw.CloseWithError(err)
	v := <-done
	if v.err != nil {
		return v.rep, v.err
	}
	return v.rep, err
}
