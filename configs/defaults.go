package configs

import (
	"net/http"
	"time"
)

// Defaults are what a key left out means. Load applies them before the checks
// in validate.go, so a check sees the value the gateway will run with, and the
// reference (docs/reference.md) can be read off this file.

// Defaults named elsewhere in the code and the docs.
const (
	DefaultMaxRequestBytes = 1 << 20
	DefaultKVMount         = "secret"
	DefaultVaultRefresh    = 30 * time.Second
	DefaultVaultMaxStale   = 5 * time.Minute
	DefaultCRLRefresh      = 30 * time.Second
	// DefaultKubernetesTokenFile is where Kubernetes mounts a pod's service-account token.
	DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// or sets *v to def when it is the zero value: the key was left out.
func or[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func dur(d time.Duration) Duration { return Duration{d} }

func (c *Config) setDefaults() {
	l := &c.Listen
	or(&l.ReadHeaderTimeout, dur(10*time.Second))
	or(&l.ReadTimeout, dur(time.Minute))
	or(&l.IdleTimeout, dur(2*time.Minute))
	or(&l.MaxHeaderBytes, 64<<10)
	or(&c.TLS.MinVersion, "1.2")
	if a := c.TLS.ACME; a != nil {
		or(&a.Challenge, "http-01")
		port := map[string]string{"http-01": "80", "tls-alpn-01": "443"}[a.Challenge]
		or(&a.ChallengeListen, "0.0.0.0:"+port)
		or(&a.Storage, "acme")
		or(&a.CARootFile, c.TLS.ClientCAFile)
	}
	if crl := c.TLS.ClientCRL; crl != nil {
		or(&crl.Refresh, dur(DefaultCRLRefresh))
		or(&crl.CAFile, c.TLS.ClientCAFile)
	}
	if c.Secrets.Provider == "vault" {
		v := &c.Secrets.Vault
		or(&v.Mount, DefaultKVMount)
		if v.Auth == "kubernetes" {
			or(&v.KubernetesTokenFile, DefaultKubernetesTokenFile)
		}
		or(&v.RefreshInterval, dur(DefaultVaultRefresh))
		or(&v.MaxStale, dur(DefaultVaultMaxStale))
	}
	p := &c.Policy
	or(&p.BundleKeyAlgorithm, "RS256")
	or(&p.Timeout, dur(50*time.Millisecond))
	or(&p.QueueWait, dur(500*time.Millisecond))
	or(&p.Poll, dur(time.Minute))
	or(&c.OAuth.StateTTL, dur(10*time.Minute))
	a := &c.Audit
	or(&a.Path, "audit.db")
	or(&a.Mode, "strict")
	or(&a.BatchSize, 256)
	or(&a.MaxDelay, dur(time.Millisecond))
	or(&a.CheckpointEvery, 1000)
	or(&a.CheckpointInterval, dur(10*time.Second))
	or(&a.Segment.MaxBytes, 1<<30)
	or(&a.Segment.MaxAge, dur(24*time.Hour))
	if r := a.Retention; r != nil {
		or(&r.Interval, dur(time.Minute))
	}
	// Tracing is off without an endpoint; its other keys alone are an error.
	if t := &c.Tracing; t.Endpoint != "" {
		or(&t.SampleRatio, 1)
		or(&t.ServiceName, "consentgate")
	}
	or(&c.StateDB, "state.db")
	cs := &c.Consents
	or(&cs.ErasureInterval, dur(5*time.Second))
	or(&cs.ErasureLease, dur(2*time.Minute))
	or(&cs.Backend, ConsentsBbolt)
	if pg := cs.Postgres; pg != nil {
		or(&pg.Port, 5432)
		or(&pg.SSLMode, "verify-full")
		or(&pg.MaxConns, 10)
	}
}

func (vd *Vendor) setDefaults() {
	t := &vd.Timeouts
	or(&t.Dial, dur(5*time.Second))
	or(&t.TLSHandshake, dur(5*time.Second))
	or(&t.ResponseHeader, dur(20*time.Second))
	or(&t.Request, dur(30*time.Second))
	or(&t.IdleConn, dur(90*time.Second))
	or(&vd.Upstream.Revocation, RevocationFailOpen)
	if cb := vd.Callback; cb != nil && cb.URLToken != nil {
		or(&cb.URLTokenParam, "consentgate_token")
	}
	for i := range vd.Operations {
		vd.Operations[i].setDefaults(vd)
	}
}

func (op *Operation) setDefaults(vd *Vendor) {
	or(&op.Body, BodyJSON)
	or(&op.Class, ClassSubject)
	if op.RequestBody == "" {
		op.RequestBody = RequestNone
		if op.Method == http.MethodPost || op.Method == http.MethodPut || op.Method == http.MethodPatch {
			op.RequestBody = RequestJSON
		}
	}
	or(&op.Undeclared, UndeclaredDrop)
	l := &op.Limits
	or(&l.Depth, 32)
	or(&l.Keys, 10000)
	or(&l.PathBytes, 512)
	or(&l.ArrayLength, 10000)
	or(&op.MaxRequestBytes, DefaultMaxRequestBytes)
	or(&op.Resources.Unknown, UnknownRefuse)
	// The vendor's enforce setting is its operations' default.
	if op.Enforce == nil {
		op.Enforce = vd.Enforce
	}
}

// addErrorFields makes the vendor's documented error fields part of every
// operation's response map, once the profile is valid.
func (vd *Vendor) addErrorFields() {
	for i := range vd.Operations {
		op := &vd.Operations[i]
		for path, cat := range vd.ErrorFields {
			if _, ok := op.Fields.Response[path]; ok {
				continue
			}
			if op.Fields.Response == nil {
				op.Fields.Response = map[string]string{}
			}
			op.Fields.Response[path] = cat
		}
	}
}
