package certs

import (
	"crypto/tls"
	"crypto/x509"
)

// AEADSuites are the TLS 1.2 cipher suites consentgate accepts and offers:
// forward-secret key exchange and authenticated encryption only. Go's defaults
// still include CBC suites; TLS 1.3 suites are all AEAD and not configurable.
var AEADSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// VerifyClientsFor makes cfg, a server's TLS configuration, verify a client
// certificate against roots for any of usages. crypto/tls verifies client
// certificates for clientAuth only; a vendor that takes a TLS server
// certificate as the client's (Komerční banka) verifies for serverAuth too.
// A certificate that fails ends the handshake, so on an established
// connection a peer certificate is a verified one. required demands one.
func VerifyClientsFor(cfg *tls.Config, roots *x509.CertPool, required bool, usages ...x509.ExtKeyUsage) {
	cfg.ClientAuth = tls.RequestClientCert
	if required {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	// Still named in the handshake: a crypto/tls client sends a certificate
	// only when its issuer is among the server's acceptable CAs.
	cfg.ClientCAs = roots
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: usages})
		return err
	}
}
