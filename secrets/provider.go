package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Ref names one value: Path is the secret (a KV v2 path in Vault, a top-level key
// in the file store) and Key the field inside it.
type Ref struct {
	Path string
	Key  string
}

// ParseRef parses "path#key".
func ParseRef(s string) (Ref, error) {
	path, key, ok := strings.Cut(s, "#")
	if !ok || path == "" || key == "" || strings.Contains(key, "#") {
		return Ref{}, fmt.Errorf("%w: %q", ErrBadRef, s)
	}
	return Ref{Path: path, Key: key}, nil
}

func (r Ref) String() string { return r.Path + "#" + r.Key }

// Secret is one resolved value with what a cache needs to know about it.
type Secret struct {
	Value string
	// Version changes whenever the value does (a KV v2 version, a file hash), so
	// users such as token sources know to rebuild.
	Version string
	// FetchedAt is when the provider read the value from its source.
	FetchedAt time.Time
	// TTL is the lease duration; zero means the value does not expire.
	TTL time.Duration
}

// Provider resolves secret references. Implementations must be safe for
// concurrent use and cheap enough to call on every request (cache if needed).
type Provider interface {
	Get(ctx context.Context, ref Ref) (Secret, error)
}

// Peeker is a cache that answers from what it holds, never reading the source:
// for status pages, which must neither wait on the source nor grow the cache.
type Peeker interface {
	// Peek is Get from the cache only: ErrNotRead when it holds nothing for
	// ref's path.
	Peek(ref Ref) (Secret, error)
}

// Cached is a Provider that answers from a cache it refreshes in the background,
// so its values have an age: the metrics gauge and the readiness check use it.
type Cached interface {
	Provider
	// CacheAge is how long ago the source last confirmed the oldest cached value
	// (zero while nothing is cached).
	CacheAge() time.Duration
	// Fresh returns an error, naming no value, when some cached value is older
	// than its provider may serve: Get fails for it until the source is back.
	Fresh() error
}

// fingerprint is a short, non-reversible version tag for a value.
func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
}
