package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// An HSM without Ed25519 signs with ECDSA P-256: its checkpoints and exports verify
// under its key only, and its key survives PEM and the file's metadata.
func TestSigningKeyKinds(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ed25519": newKey(t), "ecdsa p-256": newP256(t)} {
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			o.SigningKey, o.CheckpointEvery = key, 4
			l, path := MustOpen(t, o)
			appendN(t, l, 9)
			var export bytes.Buffer
			if err := l.Export(t.Context(), &export, Filter{}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKeyPEM(PublicKeyPEM(key.Public()))
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := VerifyDB(path, pub, RequireVouched()); err != nil || rep.Checkpoints != 3 {
				t.Fatalf("VerifyDB: %+v, %v", rep, err)
			}
			if _, err := Verify(bytes.NewReader(export.Bytes()), pub, RequireVouched()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			other := newP256(t).Public()
			var verr *VerifyError
			if _, err := VerifyDB(path, other); !errors.As(err, &verr) || !strings.Contains(verr.Error(), "fingerprint "+Fingerprint(pub)) {
				t.Errorf("VerifyDB under another key: %v, want a signature failure naming the file's key", err)
			}
			if _, err := Verify(bytes.NewReader(export.Bytes()), other); !errors.As(err, &verr) {
				t.Errorf("Verify under another key: %v", err)
			}
			// Reopened with the same key, the chain goes on.
			l2 := mustOpenPath(t, path, o)
			appendN(t, l2, 1)
		})
	}
}

// Keys the log cannot verify are refused where they come in: options, PEM, verify.
func TestSigningKeyRefusesOtherCurves(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.SigningKey = p384
	if _, err := Open(t.TempDir()+"/audit.db", o); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("Open with a P-384 key: %v", err)
	}
	if PublicKeyPEM(p384.Public()) != nil {
		t.Error("PEM of a P-384 key")
	}
	if _, err := VerifyDB("unused", p384.Public()); err == nil {
		t.Error("VerifyDB took a P-384 key")
	}
}

// flakySigner is a key in an HSM that goes away and comes back.
type flakySigner struct {
	crypto.Signer
	down  atomic.Bool
	tries atomic.Int64
}

func (s *flakySigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.tries.Add(1)
	if s.down.Load() {
		return nil, errors.New("CKR_DEVICE_REMOVED")
	}
	return s.Signer.Sign(r, digest, opts)
}

// While the signing key fails, records are still written (calls are not refused for
// want of a checkpoint) and stay unvouched; a Checkpoint asked for reports the failure;
// automatic checkpoints do not retry on every record; the next one that signs vouches
// for everything before it.
func TestCheckpointWhileTheKeyFails(t *testing.T) {
	signer := &flakySigner{Signer: newP256(t)}
	o := testOptions(t)
	o.SigningKey, o.CheckpointEvery = signer, 2
	l, path := MustOpen(t, o)
	signer.down.Store(true)
	appendN(t, l, 10)
	if err := l.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "CKR_DEVICE_REMOVED") {
		t.Fatalf("Checkpoint with the key away: %v", err)
	}
	st := l.Stats()
	if st.Records != 10 || st.Checkpoints != 0 || st.Unsigned == 0 {
		t.Fatalf("stats %+v: want 10 records, no checkpoint, unsigned counted", st)
	}
	// The clock moves a millisecond a reading: checkpoints falling due after the first
	// failure wait for signRetry, so only the first and the one asked for were tried.
	if n := signer.tries.Load(); n != 2 {
		t.Errorf("%d signatures tried, want 2 (one falling due, one asked for)", n)
	}
	if l.Head().Seq != 10 {
		t.Fatalf("head %d: no checkpoint may be written unsigned", l.Head().Seq)
	}
	signer.down.Store(false)
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyDB(path, signer.Public(), RequireVouched()); err != nil || rep.Checkpoints != 1 || rep.Records != 10 {
		t.Fatalf("VerifyDB: %+v, %v", rep, err)
	}
}

// Close reports a final checkpoint it could not sign.
func TestCloseReportsAnUnsignedFinalCheckpoint(t *testing.T) {
	signer := &flakySigner{Signer: newKey(t)}
	o := testOptions(t)
	o.SigningKey = signer
	l, path := MustOpen(t, o)
	appendN(t, l, 3)
	signer.down.Store(true)
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "final checkpoint") {
		t.Fatalf("Close: %v", err)
	}
	if _, err := VerifyDB(path, signer.Public(), RequireVouched()); err == nil {
		t.Error("records without a checkpoint passed RequireVouched")
	}
}

// A P-256 signature has two spellings, (r, s) and (r, n-s): the log writes the
// low one and verify takes no other, so nobody can rewrite a checkpoint's
// signature (and so its hash) without the key.
func TestECDSASignatureIsLowS(t *testing.T) {
	key := newP256(t)
	k, _ := keyOf(key.Public())
	msg := []byte("consentgate audit head v1\nlog\n1\nhash\n2026-12-06T00:00:00Z")
	for range 20 {
		sigHex, err := sign(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !k.verify(msg, sigHex) {
			t.Fatal("the log's own signature does not verify")
		}
		der, _ := hex.DecodeString(sigHex)
		var sig ecdsaSignature
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			t.Fatal(err)
		}
		sig.S.Sub(elliptic.P256().Params().N, sig.S)
		high, _ := asn1.Marshal(sig)
		if k.verify(msg, hex.EncodeToString(high)) {
			t.Fatal("the high-s spelling of a signature verifies")
		}
		if back, err := toLowS(high); err != nil || !bytes.Equal(back, der) {
			t.Fatalf("toLowS did not bring the high spelling back: %v", err)
		}
	}
}

// hangingSigner is an HSM that stops answering until released.
type hangingSigner struct {
	crypto.Signer
	release, returned chan struct{}
	once              sync.Once
}

func (s *hangingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	<-s.release
	defer s.once.Do(func() { close(s.returned) })
	return s.Signer.Sign(r, digest, opts)
}

// A key that hangs holds records up for SignTimeout at most, counts as an
// unsigned checkpoint, and is not asked again while its signature is out; once
// it answers, checkpoints are signed again.
func TestCheckpointWhileTheKeyHangs(t *testing.T) {
	signer := &hangingSigner{Signer: newP256(t), release: make(chan struct{}), returned: make(chan struct{})}
	o := testOptions(t)
	o.SigningKey, o.CheckpointEvery, o.SignTimeout = signer, 2, 50*time.Millisecond
	l, path := MustOpen(t, o)
	start := time.Now()
	appendN(t, l, 10)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("10 appends took %s behind a hung key", took)
	}
	if err := l.Checkpoint(context.Background()); err == nil {
		t.Error("Checkpoint passed with the key hung")
	}
	if st := l.Stats(); st.Unsigned == 0 || st.Records != 10 || st.Checkpoints != 0 {
		t.Errorf("stats %+v", st)
	}
	close(signer.release)
	<-signer.returned // the hung signature returns, and is discarded
	for l.signing.Load() {
		runtime.Gosched()
	}
	err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint once the key answers: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDB(path, signer.Public(), RequireVouched()); err != nil {
		t.Fatal(err)
	}
}
