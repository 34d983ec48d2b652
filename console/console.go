package console

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are what the console shows.
type Options struct {
	Audit  *audit.Log
	Logger *slog.Logger
	// Secret keys the forms' CSRF tokens; 32 random bytes, new at each start.
	Secret []byte
}

type console struct {
	o     Options
	pages *template.Template
	csrf  csrf
}

// New is the console, to be mounted at /console/ on the admin listener (behind
// identity.Middleware: every request carries its certificate's identity).
func New(o Options) http.Handler {
	c := &console{o: o, pages: template.Must(template.ParseFS(templateFS, "templates/*.html")), csrf: csrf{secret: o.Secret}}
	if c.o.Logger == nil {
		c.o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /console/{$}", c.index)
	mux.HandleFunc("GET /console/integrity", c.integrity)
	mux.HandleFunc("POST /console/integrity", c.verify)
	return secure(identity.Only(mux, identity.RoleAuditor, identity.RoleAdmin))
}

// secure sets what every console answer carries: no script or style from
// anywhere but the console itself, no framing, nothing cached or referred.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// page is what every page's layout needs.
type page struct {
	Title string
	Who   identity.Identity
	CSRF  string
	Data  any
}

// render writes the named page inside the layout; a template error answers 500
// without half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	who, _ := identity.From(r.Context())
	var b bytes.Buffer
	err := c.pages.ExecuteTemplate(&b, name, page{Title: title, Who: who, CSRF: c.csrf.token(who), Data: data})
	if err != nil {
		c.o.Logger.Error("console page not rendered", "page", name, "error", err.Error())
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (c *console) index(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "index.html", "Console", nil)
}
