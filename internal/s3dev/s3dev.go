// Package s3dev runs a real S3-compatible object store on loopback over TLS for
// the audit archive tests: the Versity S3 Gateway (Apache 2.0) over a directory,
// with versioning and object lock, built once into .cache/bin by `make s3`.
package s3dev

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/vaultdev"
)

// BinEnv overrides where the versitygw binary is.
const BinEnv = "CONSENTGATE_VERSITYGW_BIN"

// Bucket is the bucket Start creates, with object lock enabled.
const Bucket = "audit-archive"

// Server is a running store.
type Server struct {
	Endpoint             string // https://127.0.0.1:port
	AccessKey, SecretKey string
	CAFile               string
	RootCAs              *x509.CertPool
	cmd                  *exec.Cmd
	done                 chan error
}

// Binary is $CONSENTGATE_VERSITYGW_BIN, else <module root>/.cache/bin/versitygw.
func Binary() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		return p, nil
	}
	root, err := vaultdev.ModuleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".cache", "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the S3 store binary is missing: `make s3` builds it into %s (about a minute): %w", p, err)
	}
	return p, nil
}

// Start runs the store in dir (a fresh directory) and creates Bucket.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{AccessKey: "archiver", SecretKey: randomHex(), CAFile: filepath.Join(dir, "ca.pem"), RootCAs: x509.NewCertPool()}
	cert, key, err := s.writeTLS(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"root", "versions"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.Endpoint = "https://" + addr
	s.cmd = exec.Command(bin, "--port", addr, "--cert", cert, "--key", key, "--quiet",
		"posix", "--versioning-dir", filepath.Join(dir, "versions"), filepath.Join(dir, "root"))
	// The keys go by environment, not argv, which other users can read.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	out, err := os.Create(filepath.Join(dir, "versitygw.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting versitygw: %w", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.waitAndCreateBucket(ctx, dir); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) writeTLS(dir string) (certFile, keyFile string, err error) {
	ca, err := certs.NewCA(pkix.Name{CommonName: "s3dev CA"}, time.Hour)
	if err != nil {
		return "", "", err
	}
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return "", "", err
	}
	keyPEM, err := certs.EncodePrivateKey(key)
	if err != nil {
		return "", "", err
	}
	s.RootCAs.AddCert(ca.Cert)
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	for name, data := range map[string][]byte{s.CAFile: certs.EncodeCertificates(ca.Cert), certFile: certs.EncodeCertificates(cert), keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return "", "", err
		}
	}
	return certFile, keyFile, nil
}

// Client is a client of the store as its root user.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint[len("https://"):], &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: true,
		Transport: &http.Transport{TLSClientConfig: s.TLS()}, BucketLookup: minio.BucketLookupPath,
	})
}

func (s *Server) waitAndCreateBucket(ctx context.Context, dir string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = c.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{ObjectLocking: true})
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.done:
			b, _ := os.ReadFile(filepath.Join(dir, "versitygw.out"))
			return fmt.Errorf("versitygw exited: %v: %s", werr, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "versitygw.out"))
			return fmt.Errorf("versitygw did not create the bucket within 15 s: %w: %s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the store.
func (s *Server) Close() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// TLS trusts the store's certificate.
func (s *Server) TLS() *tls.Config {
	return &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
}

func randomHex() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}
