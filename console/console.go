package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are what the console shows: the gateway's own parts, the ones the
// admin API and the CLI read, so the console is no second source of truth.
type Options struct {
	Audit    *audit.Log
	Consents *consent.Registry
	Policy   *policy.Engine
	// SubjectHMAC hashes a person's id (app user id, birth number, IIN,
	// document number) as records and consents name them.
	SubjectHMAC func(ctx context.Context, value string) (string, error)
	// Fields are the vendor profiles' field maps, for a dry run's replay.
	Fields policy.FieldMaps
	// DryRun runs a dry run; nil runs it in this process (policy.DryRun). The
	// gateway runs it in a process of its own, with a memory bound: the
	// candidate is code an admin uploaded.
	DryRun func(ctx context.Context, in policy.DryRunInput) (policy.DryRunResult, error)
	// Erasure maps a vendor to how an end user's data is erased there
	// (audit.ProcessingOptions.Erasure), for the access report.
	Erasure func() map[string]string
	// Archived gives the log's archived segments that begin before record
	// first, as files (fetched into tmp when the archive is not a folder), for
	// the access report; nil: no archive, the report covers the node.
	Archived func(ctx context.Context, first uint64, tmp string) ([]string, error)
	// Vendors reads the vendors page's facts; nil leaves the page out.
	Vendors func(ctx context.Context) []Vendor
	// SecretsAge is the secret store's cache age (secrets.Cached); nil when
	// it caches nothing.
	SecretsAge func() time.Duration
	Logger     *slog.Logger
	// Secret keys the forms' CSRF tokens; 32 random bytes, new at each start.
	Secret []byte
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

type console struct {
	o     Options
	pages *template.Template
	csrf  csrf
	// reading holds a whole-log read (a verification, an access report) and
	// dryRunning a dry run: one of each at a time, so that no one's clicks
	// can take the gateway's cores from its calls.
	reading, dryRunning chan struct{}
}

// New is the console, to be mounted at /console/ on the admin listener (behind
// identity.Middleware: every request carries its certificate's identity).
func New(o Options) http.Handler {
	pages := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	c := &console{o: o, pages: pages, csrf: csrf{secret: o.Secret}, reading: make(chan struct{}, 1), dryRunning: make(chan struct{}, 1)}
	if c.o.Logger == nil {
		c.o.Logger = slog.New(slog.DiscardHandler)
	}
	if c.o.Now == nil {
		c.o.Now = time.Now
	}
	if c.o.DryRun == nil {
		c.o.DryRun = policy.DryRun
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /console/{$}", c.index)
	mux.HandleFunc("GET /console/timeline", c.timeline)
	mux.HandleFunc("GET /console/records/{seq}", c.recordPage)
	mux.HandleFunc("GET /console/person", c.personForm)
	mux.HandleFunc("POST /console/person", c.person)
	mux.HandleFunc("POST /console/person/report", c.personReport)
	mux.HandleFunc("GET /console/consents", c.consents)
	mux.HandleFunc("POST /console/consents", c.consents)
	mux.Handle("POST /console/consents/{id}/revoke", identity.Only(http.HandlerFunc(c.revoke), identity.RoleAdmin))
	mux.HandleFunc("GET /console/policy", c.policy)
	mux.HandleFunc("GET /console/policy/diff", c.policyDiff)
	mux.Handle("POST /console/policy/dry-run", identity.Only(http.HandlerFunc(c.dryRun), identity.RoleAdmin))
	mux.HandleFunc("GET /console/vendors", c.vendors)
	mux.HandleFunc("GET /console/integrity", c.integrity)
	mux.HandleFunc("POST /console/integrity", c.verify)
	return secure(identity.Only(mux, identity.RoleAuditor, identity.RoleAdmin))
}

// secure sets what every console answer carries: no script at all, styles
// from the console itself, no framing, nothing cached, and a referrer only to
// the console (so that its own forms carry an Origin the CSRF check can read:
// with no-referrer, browsers send "Origin: null").
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// page is what every page's layout needs.
type page struct {
	Title string
	Who   identity.Identity
	Admin bool
	CSRF  string
	Data  any
}

// render writes the named page inside the layout; a template error answers 500
// without half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	c.renderStatus(w, r, http.StatusOK, name, title, data)
}

func (c *console) renderStatus(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	who, _ := identity.From(r.Context())
	var b bytes.Buffer
	err := c.pages.ExecuteTemplate(&b, name, page{Title: title, Who: who, Admin: who.Role == identity.RoleAdmin,
		CSRF: c.csrf.token(who), Data: data})
	if err != nil {
		c.o.Logger.Error("console page not rendered", "page", name, "error", err.Error())
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fail answers a page that says what went wrong, in consentgate's words only
// (never a value the request carried).
func (c *console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	c.renderStatus(w, r, status, "error.html", http.StatusText(status), message)
}

// record writes the console's audit record of an action before it happens: no
// record, no action (the answer is 503).
func (c *console) record(w http.ResponseWriter, r *http.Request, action string, rec audit.Record) bool {
	who, _ := identity.From(r.Context())
	rec.Kind, rec.App = audit.KindAdmin, who.Name
	if rec.Detail == nil {
		rec.Detail = map[string]string{}
	}
	rec.Detail["action"], rec.Detail["role"] = "console "+action, who.Role
	if _, err := c.o.Audit.Append(r.Context(), rec); err != nil {
		c.o.Logger.Error("console action not recorded, so not done", "action", action, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The audit log cannot record this, so it was not done.")
		return false
	}
	return true
}

// form checks a state-changing or personal form: the console's own page sent
// it (csrf), or the answer is 403.
func (c *console) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !c.csrf.check(r) {
		c.fail(w, r, http.StatusForbidden, "This form did not come from the console's own page.")
		return false
	}
	return true
}

// What a second whole-log read or dry run is told while one runs.
const (
	busyReading = "A verification or an access report is running; try again when it ends."
	busyDryRun  = "A dry run is running; try again when it ends."
)

// acquire takes slot (one of its kind at a time) and returns its release, or
// answers 429 with busy.
func (c *console) acquire(w http.ResponseWriter, r *http.Request, slot chan struct{}, busy string) (release func(), ok bool) {
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, true
	default:
		w.Header().Set("Retry-After", "10")
		c.fail(w, r, http.StatusTooManyRequests, busy)
		return nil, false
	}
}

// maxForm bounds a form; a dry run's upload has its own bound.
const maxForm = 64 << 10

func (c *console) index(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "index.html", "Console", nil)
}
