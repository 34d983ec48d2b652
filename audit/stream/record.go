package stream

import (
	"encoding/json"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// meta is what a sink reads of a record besides its line: when it was
// written and its kind, for the receiver's own fields.
type meta struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
}

// metaOf reads a line's time and kind; a line the log wrote always has both.
func metaOf(l audit.Line) meta {
	var m meta
	json.Unmarshal(l.Data, &m)
	return m
}
