package pgdev

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/tier"
)

// shared is the one server of a test binary: starting PostgreSQL takes seconds,
// creating a database for each test a fraction of one.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's server (with TLS), starting it on first use.
// Without PostgreSQL the test fails, naming the command that installs it: a
// backend nobody tested must not pass for a tested one. Call CloseShared from
// TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	tier.Needs(t, "PostgreSQL")
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx, Options{TLS: true})
	})
	if shared.err != nil {
		t.Fatalf("starting a test PostgreSQL server: %v", shared.err)
	}
	return shared.srv
}

// CloseShared stops the shared server, if one was started.
func CloseShared() {
	shared.srv.Close()
}

// NewDatabase creates a database on the shared server for one test.
func NewDatabase(t testing.TB) (*Server, string) {
	t.Helper()
	s := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("creating a test database: %v", err)
	}
	return s, db
}
