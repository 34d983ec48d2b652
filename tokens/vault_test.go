package tokens

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/consentgate/consentgate/secrets"
)

// memStore is the Store contract in memory: tests of the vault alone.
type memStore struct {
	mu       sync.Mutex
	keys     map[string][]byte
	shredded map[string]bool
	tokens   map[string][]byte
}

func newMemStore() *memStore {
	return &memStore{keys: map[string][]byte{}, shredded: map[string]bool{}, tokens: map[string][]byte{}}
}

func (s *memStore) DataKey(_ context.Context, consentID string, create func() ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shredded[consentID] {
		return nil, ErrShredded
	}
	if k, ok := s.keys[consentID]; ok {
		return k, nil
	}
	k, err := create()
	if err != nil {
		return nil, err
	}
	s.keys[consentID] = k
	return k, nil
}

func (s *memStore) PutToken(_ context.Context, _ string, id, rec []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if got, ok := s.tokens[string(id)]; ok {
		return got, nil
	}
	s.tokens[string(id)] = rec
	return rec, nil
}

func (s *memStore) Token(_ context.Context, id []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if got, ok := s.tokens[string(id)]; ok {
		return got, nil
	}
	return nil, ErrUnknown
}

func (s *memStore) SwapDataKey(_ context.Context, consentID string, old, updated []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(s.keys[consentID], old) {
		return false, nil
	}
	s.keys[consentID] = updated
	return true, nil
}

func (s *memStore) DataKeyOwners(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.keys)), nil
}

func (s *memStore) shred(consentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, consentID)
	s.shredded[consentID] = true
}

func testVault(t testing.TB) (*Vault, *memStore) {
	t.Helper()
	wrap, err := secrets.ParseSealKey(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	s := newMemStore()
	return New(s, wrap, nil, testIndex), s
}

const birthNumber = "915714/4238"

var testIndex = []byte("the vault's index key, for tests")

var jana = Binding{ConsentID: "c-1", Subject: strings.Repeat("5d", 32), App: "onboarding-web", Category: "national_id", Vendor: "airbank", Field: "birthNumber"}

func TestTokenizeAndReveal(t *testing.T) {
	v, s := testVault(t)
	ctx := context.Background()
	for _, f := range []Format{{Kind: KindOpaque}, {Kind: KindPreserve}} {
		tok, err := v.Tokenize(ctx, jana, f, false, birthNumber)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := v.Tokenize(ctx, jana, f, false, birthNumber)
		if tok == birthNumber || again == tok {
			t.Errorf("%s: tokens %q and %q of one value: equal to it or to each other", f.Kind, tok, again)
		}
		got, b, err := v.Reveal(ctx, tok, jana.Subject, jana.App)
		if err != nil || got != birthNumber || b != jana {
			t.Errorf("%s: Reveal = %q, %+v, %v", f.Kind, got, b, err)
		}
	}
	for id, rec := range s.tokens {
		if bytes.Contains(rec, []byte(birthNumber)) || strings.Contains(id, birthNumber) {
			t.Error("the store holds the value in clear")
		}
	}
}

func TestDeterministicTokens(t *testing.T) {
	v, _ := testVault(t)
	ctx := context.Background()
	f := Format{Kind: KindPreserve}
	a, _ := v.Tokenize(ctx, jana, f, true, birthNumber)
	b, _ := v.Tokenize(ctx, jana, f, true, birthNumber)
	other := jana
	other.Field = "person.birthNumber"
	c, _ := v.Tokenize(ctx, other, f, true, birthNumber)
	consent2 := jana
	consent2.ConsentID = "c-2"
	d, _ := v.Tokenize(ctx, consent2, f, true, birthNumber)
	if a == "" || a != b || a == c || a == d {
		t.Errorf("deterministic tokens %q %q; other field %q; other consent %q", a, b, c, d)
	}
}

// Another end user's or app's token is not theirs; a token never made, or
// altered, is unknown.
func TestRevealOnlyToTheBinding(t *testing.T) {
	v, _ := testVault(t)
	ctx := context.Background()
	tok, err := v.Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		tok, subject, app string
		want              error
	}{
		"another end user": {tok, strings.Repeat("77", 32), jana.App, ErrNotYours},
		"another app":      {tok, jana.Subject, "eshop-checkout", ErrNotYours},
		"unknown token":    {"tok_" + strings.Repeat("A", 24), jana.Subject, jana.App, ErrUnknown},
		"token altered":    {altered(tok), jana.Subject, jana.App, ErrUnknown},
	} {
		if got, _, err := v.Reveal(ctx, c.tok, c.subject, c.app); !errors.Is(err, c.want) || got != "" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

// altered is tok with its last character changed.
func altered(tok string) string {
	if strings.HasSuffix(tok, "0") {
		return tok[:len(tok)-1] + "1"
	}
	return tok[:len(tok)-1] + "0"
}

// Destroying the consent's data key voids its tokens at once, and no new one
// is made for it; other consents' tokens stay.
func TestShreddedConsent(t *testing.T) {
	v, s := testVault(t)
	ctx := context.Background()
	tok, _ := v.Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	other := jana
	other.ConsentID = "c-2"
	kept, _ := v.Tokenize(ctx, other, Format{Kind: KindOpaque}, false, birthNumber)
	s.shred(jana.ConsentID)
	if got, _, err := v.Reveal(ctx, tok, jana.Subject, jana.App); !errors.Is(err, ErrShredded) || got != "" {
		t.Errorf("Reveal after shredding: %q, %v", got, err)
	}
	if _, err := v.Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber); !errors.Is(err, ErrShredded) {
		t.Errorf("Tokenize after shredding: %v", err)
	}
	if got, _, err := v.Reveal(ctx, kept, other.Subject, other.App); err != nil || got != birthNumber {
		t.Errorf("the other consent's token: %q, %v", got, err)
	}
}

// Someone who can write the store rebinds a token to their own end user and
// app: the sealed value no longer opens.
func TestRebindingARecordBreaksIt(t *testing.T) {
	v, s := testVault(t)
	ctx := context.Background()
	tok, _ := v.Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	key := string(v.storeKey(tok))
	var rec record
	json.Unmarshal(s.tokens[key], &rec)
	rec.Subject, rec.App = strings.Repeat("77", 32), "eshop-checkout"
	s.tokens[key], _ = json.Marshal(rec)
	if got, _, err := v.Reveal(ctx, tok, rec.Subject, rec.App); err == nil || got != "" || strings.Contains(err.Error(), birthNumber) {
		t.Errorf("a rebound record revealed %q, %v", got, err)
	}
}

// A token already taken by another value (format-preserving tokens of one
// field can collide) is drawn again: the deterministic token's first candidate
// is stored beforehand for another value, and the value gets the second.
func TestCollisionsDrawAgain(t *testing.T) {
	v, _ := testVault(t)
	ctx := context.Background()
	f := Format{Kind: KindPreserve}
	dk, err := v.dataKey(ctx, jana.ConsentID, true)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.generate(newStream(subkey(dk, "deterministic tokens"), jana.Field, birthNumber), birthNumber)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.put(ctx, dk, jana, first, "8001011234"); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Tokenize(ctx, jana, f, true, birthNumber)
	if err != nil || tok == first || tok == birthNumber {
		t.Fatalf("token %q (first candidate %q), %v", tok, first, err)
	}
	for tk, want := range map[string]string{tok: birthNumber, first: "8001011234"} {
		if got, _, _ := v.Reveal(ctx, tk, jana.Subject, jana.App); got != want {
			t.Errorf("token %q reveals %q, want %q", tk, got, want)
		}
	}
}

func BenchmarkTokenize(b *testing.B) {
	v, _ := testVault(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := v.Tokenize(ctx, jana, Format{Kind: KindPreserve}, false, birthNumber); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReveal(b *testing.B) {
	v, _ := testVault(b)
	ctx := context.Background()
	tok, _ := v.Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	for b.Loop() {
		if _, _, err := v.Reveal(ctx, tok, jana.Subject, jana.App); err != nil {
			b.Fatal(err)
		}
	}
}

// Rotating the wrapping key: with the previous key named, tokens made under it
// still reveal and their data keys are wrapped again under the new one; after
// Rewrap the previous key is not needed; without it and before Rewrap, nothing
// opens.
func TestRotateTheWrappingKey(t *testing.T) {
	s := newMemStore()
	ctx := context.Background()
	old, next := wrapKey(t, "01"), wrapKey(t, "02")
	tok, err := New(s, old, nil, testIndex).Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	if err != nil {
		t.Fatal(err)
	}
	other := jana
	other.ConsentID = "c-2"
	tok2, _ := New(s, old, nil, testIndex).Tokenize(ctx, other, Format{Kind: KindOpaque}, false, birthNumber)
	if _, _, err := New(s, next, nil, testIndex).Reveal(ctx, tok, jana.Subject, jana.App); err == nil {
		t.Fatal("a key wrapped under the old key opened under the new one alone")
	}
	rotating := New(s, next, old, testIndex)
	if got, _, err := rotating.Reveal(ctx, tok, jana.Subject, jana.App); err != nil || got != birthNumber {
		t.Fatalf("reveal while rotating: %q, %v", got, err)
	}
	// Revealing rewrapped c-1's key; Rewrap does the rest.
	if n, err := rotating.Rewrap(ctx); err != nil || n != 1 {
		t.Fatalf("Rewrap: %d, %v; want the one key not used yet", n, err)
	}
	for _, tk := range []string{tok, tok2} {
		b := jana
		if tk == tok2 {
			b = other
		}
		if got, _, err := New(s, next, nil, testIndex).Reveal(ctx, tk, b.Subject, b.App); err != nil || got != birthNumber {
			t.Errorf("after Rewrap, under the new key alone: %q, %v", got, err)
		}
	}
}

// A rotation across replicas: all are first given the coming key as next
// (phase 1); then, one at a time, it becomes the wrapping key with the old one
// as previous (phase 2). A replica still in phase 1 opens what a rotated one
// has rewrapped, and neither rewraps the other's keys back: no call fails and
// the keys end up under the new key.
func TestRotateAcrossReplicas(t *testing.T) {
	s := newMemStore()
	ctx := context.Background()
	old, next := wrapKey(t, "01"), wrapKey(t, "02")
	tok, err := New(s, old, nil, testIndex).Tokenize(ctx, jana, Format{Kind: KindOpaque}, false, birthNumber)
	if err != nil {
		t.Fatal(err)
	}
	waiting := New(s, old, nil, testIndex).OpensNext(next) // phase 1
	rotated := New(s, next, old, testIndex)                // phase 2
	if n, err := rotated.Rewrap(ctx); err != nil || n != 1 {
		t.Fatalf("Rewrap: %d, %v", n, err)
	}
	underNext := string(s.keys[jana.ConsentID])
	if got, _, err := waiting.Reveal(ctx, tok, jana.Subject, jana.App); err != nil || got != birthNumber {
		t.Fatalf("a replica in phase 1, after another rewrapped: %q, %v", got, err)
	}
	if string(s.keys[jana.ConsentID]) != underNext {
		t.Error("the phase-1 replica rewrapped a key back under the old key")
	}
	if _, _, err := New(s, old, nil, testIndex).Reveal(ctx, tok, jana.Subject, jana.App); err == nil {
		t.Error("without next, a rewrapped key opened under the old key: the test proves nothing")
	}
	// A key the phase-1 replica makes meanwhile is under the old key; the
	// rotated one rewraps it when it next runs through.
	other := jana
	other.ConsentID = "c-2"
	tok2, err := waiting.Tokenize(ctx, other, Format{Kind: KindOpaque}, false, birthNumber)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rotated.Rewrap(ctx); err != nil || n != 1 {
		t.Fatalf("second Rewrap: %d, %v", n, err)
	}
	if got, _, err := New(s, next, nil, testIndex).Reveal(ctx, tok2, other.Subject, other.App); err != nil || got != birthNumber {
		t.Errorf("after the rotation, under the new key alone: %q, %v", got, err)
	}
}

// wrapKey is a wrapping key of 32 bytes of hex.
func wrapKey(t *testing.T, hex string) Wrapper {
	t.Helper()
	k, err := secrets.ParseSealKey(strings.Repeat(hex, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A token's id is keyed: a format-preserving token has too few values for an
// unkeyed hash to hide it (10^10 birth numbers are hashed in minutes).
func TestTokenIDIsKeyed(t *testing.T) {
	s := newMemStore()
	a, b := New(s, nil, nil, []byte("index key a")), New(s, nil, nil, []byte("index key b"))
	unkeyed := sha256.Sum256([]byte("consentgate token v1\x00" + birthNumber))
	if a.ID(birthNumber) == b.ID(birthNumber) || a.ID(birthNumber) == hex.EncodeToString(unkeyed[:8]) {
		t.Error("the token id does not depend on the index key")
	}
}
