package tokens

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Binding is what a token is bound to: the consent, and through it the end
// user (Subject, the HMAC the registry keeps) and the app; the data category
// and field of the value, and the vendor it came from.
type Binding struct {
	ConsentID string `json:"consent_id"`
	Subject   string `json:"subject"`
	App       string `json:"app"`
	Category  string `json:"category"`
	Vendor    string `json:"vendor"`
	Field     string `json:"field"`
}

// Store keeps data keys and token records: the consent registry's state store.
type Store interface {
	// DataKey returns the consent's wrapped data key, storing create's first if it
	// has none. ErrShredded if the consent's key was destroyed.
	DataKey(ctx context.Context, consentID string, create func() ([]byte, error)) ([]byte, error)
	// PutToken stores rec, bound to the consent, under id unless id is
	// taken, and returns the record stored under id after.
	PutToken(ctx context.Context, consentID string, id, rec []byte) ([]byte, error)
	// Token returns the record under id; ErrUnknown if there is none.
	Token(ctx context.Context, id []byte) ([]byte, error)
	// SwapDataKey replaces a consent's wrapped data key only if old is stored;
	// DataKeyOwners lists the consents that hold one (key rotation).
	SwapDataKey(ctx context.Context, consentID string, old, updated []byte) (bool, error)
	DataKeyOwners(ctx context.Context) ([]string, error)
}

// Wrapper wraps data keys: the local key file's AES key or Vault's transit engine.
type Wrapper interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

var (
	// ErrUnknown means no token is stored under that value.
	ErrUnknown = errors.New("token unknown")
	// ErrNotYours means the token is bound to another end user or app.
	ErrNotYours = errors.New("token bound to another end user or app")
	// ErrShredded means the consent's data key was destroyed: its values are gone.
	ErrShredded = errors.New("token data key destroyed")
)

// Vault makes tokens and reveals their values.
type Vault struct {
	store    Store
	wrap     Wrapper
	previous Wrapper // the wrapping key before the last rotation; nil: none
	next     Wrapper // the wrapping key of a rotation under way; nil: none
	index    []byte  // keys the hashes tokens are stored and named by
}

// New is a vault over store, whose data keys wrap wraps. While the wrapping
// key is rotated, previous (or nil) is the one before: a data key that opens
// only under it is wrapped again under wrap when it is next used, and Rewrap
// does so for all of them, so that previous can be retired. indexKey keys the
// hash a token is stored and named by: a format-preserving token has few
// enough values that an unkeyed hash would give it away; it must not change.
func New(store Store, wrap, previous Wrapper, indexKey []byte) *Vault {
	return &Vault{store: store, wrap: wrap, previous: previous, index: indexKey}
}

// OpensNext lets v open data keys wrapped under next, the key a rotation is
// about to make the wrapping key, without wrapping under it or rewrapping
// from it: replicas given it first keep working while others, already
// rotated, rewrap the keys they share.
func (v *Vault) OpensNext(next Wrapper) *Vault {
	v.next = next
	return v
}

// record is what is stored for a token: the binding in clear (no personal
// value) and the value sealed under the consent's data key, bound to both.
type record struct {
	Binding
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealed"`
}

// Entry is a token as a listing shows it: its id and binding, never the token
// (only its hash is stored) or the value.
type Entry struct {
	ID string `json:"id"`
	Binding
	Created time.Time `json:"created"`
}

// Entries reads stored records (Store.TokensOf) for a listing.
func Entries(ids [][]byte, recs [][]byte) ([]Entry, error) {
	out := make([]Entry, 0, len(recs))
	for i, raw := range recs {
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("token record: %w", err)
		}
		out = append(out, Entry{ID: hex.EncodeToString(ids[i][:8]), Binding: r.Binding, Created: r.Created})
	}
	return out, nil
}

// ID names a token in audit records and listings: without the index key no
// one learns the token from it, however few values its format has.
func (v *Vault) ID(token string) string { return hex.EncodeToString(v.storeKey(token)[:8]) }

func (v *Vault) storeKey(token string) []byte {
	m := hmac.New(sha256.New, v.index)
	m.Write([]byte("consentgate token v1\x00" + token))
	return m.Sum(nil)
}

// Tokenize returns a token for value, bound to b. Deterministic tokens are the
// same for the same consent, field and value, so that an app can join records
// without seeing the values; others are drawn at random.
func (v *Vault) Tokenize(ctx context.Context, b Binding, f Format, deterministic bool, value string) (string, error) {
	dk, err := v.dataKey(ctx, b.ConsentID, true)
	if err != nil {
		return "", err
	}
	var r io.Reader = rand.Reader
	if deterministic {
		r = newStream(subkey(dk, "deterministic tokens"), b.Field, value)
	}
	for range 16 {
		tok, err := f.generate(r, value)
		if err != nil {
			return "", err
		}
		stored, err := v.put(ctx, dk, b, tok, value)
		if err != nil {
			return "", err
		}
		if stored {
			return tok, nil
		}
		// Taken by another value (format-preserving tokens of short values): draw on.
	}
	return "", fmt.Errorf("%w: no free token after 16 draws (the format leaves too few)", ErrFormat)
}

// put stores tok for value; false if tok is another value's.
func (v *Vault) put(ctx context.Context, dk []byte, b Binding, tok, value string) (bool, error) {
	key := v.storeKey(tok)
	aad := sealAAD(key, b)
	sealed, err := seal(dk, []byte(value), aad)
	if err != nil {
		return false, err
	}
	rec, _ := json.Marshal(record{Binding: b, Created: time.Now().UTC().Truncate(time.Second), Sealed: sealed})
	got, err := v.store.PutToken(ctx, b.ConsentID, key, rec)
	if err != nil {
		return false, fmt.Errorf("storing a token: %w", err)
	}
	if string(got) == string(rec) {
		return true, nil
	}
	// The token was stored before: the same value under the same binding (a
	// deterministic token again) is the same token.
	var old record
	if json.Unmarshal(got, &old) != nil || old.Binding != b {
		return false, nil
	}
	plain, err := open(dk, old.Sealed, aad)
	return err == nil && string(plain) == value, nil
}

// Reveal returns the value of tok and its binding, if tok is one of the end
// user's (subject) tokens held by app: ErrUnknown if it is no token, ErrNotYours
// if it is another's (the caller refuses both alike where it can tell a token
// by its shape), ErrShredded if its consent's key is gone.
func (v *Vault) Reveal(ctx context.Context, tok, subject, app string) (string, Binding, error) {
	return v.reveal(ctx, tok, func(b Binding) bool {
		return hmac.Equal([]byte(b.Subject), []byte(subject)) && b.App == app
	})
}

// RevealToAdmin returns any token's value while its consent holds: an admin's
// look at one token, which the caller records (with the reason) before
// showing the value to anyone.
func (v *Vault) RevealToAdmin(ctx context.Context, tok string) (string, Binding, error) {
	return v.reveal(ctx, tok, func(Binding) bool { return true })
}

func (v *Vault) reveal(ctx context.Context, tok string, mine func(Binding) bool) (string, Binding, error) {
	key := v.storeKey(tok)
	got, err := v.store.Token(ctx, key)
	if err != nil {
		return "", Binding{}, err
	}
	var rec record
	if err := json.Unmarshal(got, &rec); err != nil {
		return "", Binding{}, fmt.Errorf("token record %s: %w", v.ID(tok), err)
	}
	if !mine(rec.Binding) {
		return "", Binding{}, ErrNotYours
	}
	dk, err := v.dataKey(ctx, rec.ConsentID, false)
	if err != nil {
		return "", Binding{}, err
	}
	plain, err := open(dk, rec.Sealed, sealAAD(key, rec.Binding))
	if err != nil {
		return "", Binding{}, fmt.Errorf("token %s does not open: %w", v.ID(tok), err)
	}
	return string(plain), rec.Binding, nil
}

func sealAAD(key []byte, b Binding) []byte {
	aad, _ := json.Marshal(b)
	return append(append([]byte{}, key...), aad...)
}

// dataKey unwraps the consent's data key, making one first if it has none.
func (v *Vault) dataKey(ctx context.Context, consentID string, create bool) ([]byte, error) {
	wrapped, err := v.store.DataKey(ctx, consentID, func() ([]byte, error) {
		if !create { // a reveal: a consent without a key has no tokens
			return nil, ErrShredded
		}
		dk := make([]byte, 32)
		if _, err := rand.Read(dk); err != nil {
			return nil, err
		}
		return v.wrap.Seal(dk, []byte(consentID))
	})
	if err != nil {
		return nil, fmt.Errorf("data key of consent %s: %w", consentID, err)
	}
	return v.unwrap(ctx, consentID, wrapped)
}

// unwrap opens a data key under the wrapping key or the next one, else under
// the previous one, and then wraps it again under the current key.
func (v *Vault) unwrap(ctx context.Context, consentID string, wrapped []byte) ([]byte, error) {
	dk, err := v.open(wrapped, consentID)
	if err == nil {
		return dk, nil
	}
	if v.previous != nil {
		if old, perr := v.previous.Open(wrapped, []byte(consentID)); perr == nil && len(old) == 32 {
			if again, werr := v.wrap.Seal(old, []byte(consentID)); werr == nil {
				// Lost to a concurrent rewrap, it is wrapped again next time.
				v.store.SwapDataKey(ctx, consentID, wrapped, again)
			}
			return old, nil
		}
	}
	return nil, fmt.Errorf("data key of consent %s does not unwrap under the token vault key (rotated without token_vault_previous?): %v", consentID, err)
}

// open opens a data key under the wrapping key, or the next one.
func (v *Vault) open(wrapped []byte, consentID string) ([]byte, error) {
	dk, err := v.wrap.Open(wrapped, []byte(consentID))
	if err == nil && len(dk) == 32 {
		return dk, nil
	}
	if v.next != nil {
		if dk, nerr := v.next.Open(wrapped, []byte(consentID)); nerr == nil && len(dk) == 32 {
			return dk, nil
		}
	}
	if err == nil {
		err = errors.New("not a 32-byte key")
	}
	return nil, err
}

// Rewrap wraps every data key that opens only under the previous wrapping
// key again under the current one, and says how many it rewrapped; once it
// has run through, the previous key can be retired.
func (v *Vault) Rewrap(ctx context.Context) (int, error) {
	if v.previous == nil {
		return 0, nil
	}
	owners, err := v.store.DataKeyOwners(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range owners {
		wrapped, err := v.store.DataKey(ctx, id, func() ([]byte, error) { return nil, ErrShredded })
		switch {
		case errors.Is(err, ErrShredded):
			continue // destroyed or lapsed meanwhile: nothing to rewrap
		case err != nil:
			// Not to be taken for done: the previous key must stay.
			return n, fmt.Errorf("rewrapping the data key of consent %s: %w", id, err)
		}
		if _, err := v.open(wrapped, id); err == nil {
			continue
		}
		if _, err := v.unwrap(ctx, id, wrapped); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// subkey derives a key for one use of a data key (HKDF-Expand with SHA-256,
// one block), so sealing and deterministic tokens never share a key.
func subkey(dk []byte, use string) []byte {
	m := hmac.New(sha256.New, dk)
	m.Write([]byte(use))
	m.Write([]byte{1})
	return m.Sum(nil)
}

func seal(dk, plain, aad []byte) ([]byte, error) {
	g, err := gcm(subkey(dk, "sealing values"))
	if err != nil {
		return nil, err
	}
	out := make([]byte, g.NonceSize(), g.NonceSize()+len(plain)+g.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return g.Seal(out, out, plain, aad), nil
}

func open(dk, sealed, aad []byte) ([]byte, error) {
	g, err := gcm(subkey(dk, "sealing values"))
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
}

func gcm(dk []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// stream is the random source of a deterministic token: HMAC-SHA256 under the
// data key of the field and value, counter mode, as long as the draws need.
type stream struct {
	key, msg []byte
	ctr      uint64
	buf      []byte
}

func newStream(dk []byte, field, value string) *stream {
	msg := binary.AppendUvarint(nil, uint64(len(field)))
	return &stream{key: dk, msg: append(append(msg, field...), value...)}
}

func (s *stream) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		if len(s.buf) == 0 {
			m := hmac.New(sha256.New, s.key)
			m.Write(binary.BigEndian.AppendUint64(nil, s.ctr))
			m.Write(s.msg)
			s.buf, s.ctr = m.Sum(nil), s.ctr+1
		}
		c := copy(p[n:], s.buf)
		s.buf, n = s.buf[c:], n+c
	}
	return len(p), nil
}
