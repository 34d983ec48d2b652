package main

import (
	"context"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// peekOnly is a cache holding the values in have; any Get fails the test: a
// status page never reads through to the store.
type peekOnly struct {
	t    *testing.T
	have map[string]error // path → nil (cached, fresh) or the error Peek gives
}

func (p peekOnly) Get(context.Context, secrets.Ref) (secrets.Secret, error) {
	p.t.Error("the vendors page read a secret through to the store")
	return secrets.Secret{}, secrets.ErrUnavailable
}

func (p peekOnly) Peek(ref secrets.Ref) (secrets.Secret, error) {
	err, ok := p.have[ref.Path]
	if !ok {
		return secrets.Secret{}, secrets.ErrNotRead
	}
	return secrets.Secret{Value: "v", FetchedAt: time.Unix(1000, 0)}, err
}

// The vendors page says what is wrong with a vendor's secrets, from the
// cache alone.
func TestSecretsStateFromTheCache(t *testing.T) {
	vendor := &configs.Vendor{ID: "kb", Credentials: []configs.Credential{{Type: "api_key", Secret: "kb/api#key"},
		{Type: "oauth2_client_credentials", ClientSecret: "kb/oauth#secret"}}}
	stale := &secrets.StaleError{Ref: secrets.Ref{Path: "kb/api", Key: "key"}, Age: time.Hour, MaxStale: time.Minute}
	for _, c := range []struct {
		have    map[string]error
		problem string
		fetched bool
	}{
		{map[string]error{"kb/api": nil, "kb/oauth": nil}, "", true},
		{map[string]error{"kb/api": stale, "kb/oauth": nil}, "stale", true},
		{map[string]error{"kb/oauth": nil}, "not read yet", true},
		{map[string]error{"kb/api": secrets.ErrNotFound, "kb/oauth": stale}, "unavailable", false},
	} {
		fetched, problem := secretsState(context.Background(), peekOnly{t, c.have}, vendor)
		if problem != c.problem || fetched.IsZero() == c.fetched {
			t.Errorf("%v: %q, fetched %v", c.have, problem, fetched)
		}
	}
	if fetched, problem := secretsState(context.Background(), peekOnly{t, nil}, &configs.Vendor{ID: "x"}); problem != "" || !fetched.IsZero() {
		t.Errorf("a vendor without secrets: %q %v", problem, fetched)
	}
}
