package console

import (
	"html/template"
	"strconv"
	"strings"
	"time"
)

// funcs are the templates' few helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
	},
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"timeOrZero": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"pct":   func(f float64) float64 { return f * 100 },
	"count": func(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) },
	// local is a time as a datetime-local input shows it (UTC, no zone).
	"local": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04:05")
	},
	"decision": func(b *bool) string {
		switch {
		case b == nil:
			return ""
		case *b:
			return "allow"
		default:
			return "deny"
		}
	},
}
