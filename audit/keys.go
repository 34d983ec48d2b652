package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// headMessage is what a checkpoint or an export head signs: this log reached record seq,
// whose hash is hash, as of t. The prefix keeps these signatures from being valid for
// any other message the key might sign (an export header's differs).
func headMessage(logID string, seq uint64, hash string, t time.Time) []byte {
	b := []byte("consentgate audit head v1\n")
	b = append(b, logID...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	b = append(b, hash...)
	b = append(b, '\n')
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// verifySignature checks a hex signature over msg, refusing any spelling of it but the
// one the log writes (hex.DecodeString would accept upper case).
func verifySignature(pub ed25519.PublicKey, msg []byte, sigHex string) bool {
	if !isHex(sigHex, 2*ed25519.SignatureSize) {
		return false
	}
	sig, err := hex.DecodeString(sigHex)
	return err == nil && ed25519.Verify(pub, msg, sig)
}

// PublicKeyPEM encodes an Ed25519 public key as a PKIX "PUBLIC KEY" PEM block, what
// `consentgate audit pubkey` prints and auditors keep to verify exports. It returns nil
// for a key of the wrong length.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	if len(pub) != ed25519.PublicKeySize {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM reads the first PEM block of b, which must be a PKIX "PUBLIC KEY"
// holding an Ed25519 key.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("audit public key: no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("audit public key: PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key: %T, want an Ed25519 key", k)
	}
	return pub, nil
}

// Fingerprint names a public key in messages and in the file's metadata: the SHA-256 of
// its 32 raw bytes, hex.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}
