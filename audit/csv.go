package audit

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

var csvHeader = []string{"seq", "time", "node", "kind", "request_id", "decision_id", "policy_revision", "app",
	"vendor", "operation", "method", "path_template", "consent_id", "purpose", "subject_hmac", "allow",
	"reasons", "status", "latency_us", "bytes_in", "bytes_out", "error", "disclosed", "withheld", "hash"}

// WriteCSV turns an export into CSV for spreadsheets: one row per record, lists
// joined with ";". CSV is a view, not evidence: verify the JSONL export it came
// from. Elided stubs and the header line are left out.
func WriteCSV(r io.Reader, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for line := 1; sc.Scan(); line++ {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("export line %d: %w", line, err)
		}
		if rec.Kind == "" || rec.Kind == KindElided {
			continue
		}
		allow := ""
		if rec.Allow != nil {
			allow = strconv.FormatBool(*rec.Allow)
		}
		row := []string{strconv.FormatUint(rec.Seq, 10), rec.Time.UTC().Format(time.RFC3339Nano), rec.Node, rec.Kind,
			rec.RequestID, rec.DecisionID, rec.PolicyRevision, rec.App, rec.Vendor, rec.Operation, rec.Method,
			rec.PathTemplate, rec.ConsentID, rec.Purpose, rec.SubjectHMAC, allow, strings.Join(rec.Reasons, ";"),
			strconv.Itoa(rec.Status), strconv.FormatInt(rec.LatencyUS, 10), strconv.FormatInt(rec.BytesIn, 10),
			strconv.FormatInt(rec.BytesOut, 10), rec.Error, strings.Join(rec.Disclosed, ";"),
			strings.Join(rec.Withheld, ";"), rec.Hash}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
