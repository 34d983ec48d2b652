package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// PublicKey verifies a log's checkpoints and signed exports: an ed25519.PublicKey, or
// an *ecdsa.PublicKey on P-256, for a signing key kept in an HSM that has no Ed25519.
type PublicKey = crypto.PublicKey

// headMessage is what a checkpoint or an export head signs: this log reached record seq,
// whose hash is hash, as of t. The prefix keeps these signatures from being valid for
// any other message the key might sign (an export header's differs).
func headMessage(logID string, seq uint64, hash string, t time.Time) []byte {
	return signedHeadMessage("consentgate audit head v1\n", logID, seq, hash, t)
}

// sealMessage is what the checkpoint sealing a segment signs: a head message under
// its own prefix, so that a chain may start only at a checkpoint the key made to
// end a segment, never at one of the checkpoints within it.
func sealMessage(logID string, seq uint64, hash string, t time.Time) []byte {
	return signedHeadMessage("consentgate audit seal v1\n", logID, seq, hash, t)
}

func signedHeadMessage(prefix, logID string, seq uint64, hash string, t time.Time) []byte {
	b := []byte(prefix)
	b = append(b, logID...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	b = append(b, hash...)
	b = append(b, '\n')
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// key is a verifying key with its raw bytes, which the file's metadata and an export's
// header carry in hex: Ed25519's 32 bytes, or P-256's 65-byte uncompressed point.
type key struct {
	raw []byte
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
}

// keyOf checks that pub is a key the log signs with.
func keyOf(pub PublicKey) (key, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return key{raw: k, ed: k}, nil
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve == elliptic.P256() {
			raw, err := k.Bytes()
			if err == nil {
				return key{raw: raw, ec: k}, nil
			}
		}
	}
	return key{}, fmt.Errorf("%T is not an Ed25519 or ECDSA P-256 public key", pub)
}

// keyFromRaw reads a key's raw bytes back.
func keyFromRaw(raw []byte) (key, error) {
	if len(raw) == ed25519.PublicKeySize {
		return keyOf(ed25519.PublicKey(raw))
	}
	ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return key{}, fmt.Errorf("%d bytes are neither an Ed25519 key nor a P-256 point", len(raw))
	}
	return keyOf(ec)
}

// isKeyHex reports whether s is a key's raw bytes as the log writes them.
func isKeyHex(s string) bool {
	return isHex(s, 2*ed25519.PublicKeySize) || isHex(s, 2*65)
}

func (k key) hex() string { return hex.EncodeToString(k.raw) }

// fingerprint names the key in messages and in the file's metadata.
func (k key) fingerprint() string {
	sum := sha256.Sum256(k.raw)
	return hex.EncodeToString(sum[:])
}

// verify checks a hex signature over msg, refusing any spelling of it but the one the
// log writes (hex.DecodeString would accept upper case). ECDSA signs msg's SHA-256 and
// its signature is ASN.1 DER, at most 72 bytes on P-256, with the low s: (r, n-s)
// verifies as well, and would let anyone rewrite a signature without the key.
func (k key) verify(msg []byte, sigHex string) bool {
	switch {
	case k.ed != nil:
		if !isHex(sigHex, 2*ed25519.SignatureSize) {
			return false
		}
		sig, err := hex.DecodeString(sigHex)
		return err == nil && ed25519.Verify(k.ed, msg, sig)
	case k.ec != nil:
		if len(sigHex) > 2*72 || !isHex(sigHex, len(sigHex)) {
			return false
		}
		sig, err := hex.DecodeString(sigHex)
		if err != nil || !lowS(sig) {
			return false
		}
		digest := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k.ec, digest[:], sig)
	}
	return false
}

// sign signs msg as key.verify checks it. With a key in an HSM this can fail.
func sign(s crypto.Signer, msg []byte) (string, error) {
	var sig []byte
	var err error
	switch s.Public().(type) {
	case ed25519.PublicKey:
		sig, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		if sig, err = s.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
			sig, err = toLowS(sig)
		}
	default:
		err = fmt.Errorf("%T is not an Ed25519 or ECDSA P-256 key", s.Public())
	}
	if err != nil {
		return "", fmt.Errorf("signing the audit head: %w", err)
	}
	return hex.EncodeToString(sig), nil
}

// PublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block, what
// `consentgate audit pubkey` prints and auditors keep to verify exports. It returns nil
// for a key the log cannot sign with.
func PublicKeyPEM(pub PublicKey) []byte {
	if _, err := keyOf(pub); err != nil {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM reads the first PEM block of b, which must be a PKIX "PUBLIC KEY"
// holding an Ed25519 or ECDSA P-256 key.
func ParsePublicKeyPEM(b []byte) (PublicKey, error) {
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
	if _, err := keyOf(k); err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	return k, nil
}

// Fingerprint names a public key in messages and in the file's metadata: the SHA-256 of
// its raw bytes (an Ed25519 key's 32, a P-256 key's uncompressed point), hex; "" for a
// key the log cannot sign with.
func Fingerprint(pub PublicKey) string {
	k, err := keyOf(pub)
	if err != nil {
		return ""
	}
	return k.fingerprint()
}

// ecdsaSignature is an ECDSA signature's ASN.1 form.
type ecdsaSignature struct{ R, S *big.Int }

var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// toLowS rewrites a DER signature with s above half the order as (r, n-s): the one
// spelling verify takes. An HSM may return either.
func toLowS(der []byte) ([]byte, error) {
	var sig ecdsaSignature
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 || sig.S == nil {
		return nil, fmt.Errorf("the key returned a signature that is not ASN.1 DER")
	}
	if sig.S.Cmp(p256HalfOrder) <= 0 {
		return der, nil
	}
	sig.S.Sub(elliptic.P256().Params().N, sig.S)
	return asn1.Marshal(sig)
}

func lowS(der []byte) bool {
	var sig ecdsaSignature
	rest, err := asn1.Unmarshal(der, &sig)
	return err == nil && len(rest) == 0 && sig.S != nil && sig.S.Sign() > 0 && sig.S.Cmp(p256HalfOrder) <= 0
}
