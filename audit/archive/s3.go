package archive

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a Store in a bucket of an S3-compatible object store.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
	lock   minio.RetentionMode // "": no object lock
	where  string
}

// S3Options say which bucket, and how to reach it.
type S3Options struct {
	Endpoint             string // https://host:port
	Region               string
	Bucket, Prefix       string
	AccessKey, SecretKey string
	// RootCAs verifies the store's certificate; nil: the system's roots.
	RootCAs *x509.CertPool
	// ObjectLock is "", "governance" or "compliance": every object is locked
	// until its retention ends, in a bucket created with object lock.
	ObjectLock string
}

// NewS3 connects to nothing yet: the first call does.
func NewS3(o S3Options) (*S3, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("archive endpoint %q: not an https URL", o.Endpoint)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:    true,
		Region:    o.Region,
		Transport: tr,
		// Path-style: the bucket need not be a DNS name of the store.
		BucketLookup: minio.BucketLookupPath,
		// Checksums sent as trailers, computed while the body streams (Put).
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("archive endpoint %s: %w", u.Host, err)
	}
	s := &S3{client: c, bucket: o.Bucket, prefix: strings.Trim(o.Prefix, "/"), where: "s3://" + path.Join(o.Bucket, o.Prefix) + " at " + u.Host}
	switch o.ObjectLock {
	case "":
	case "governance":
		s.lock = minio.Governance
	case "compliance":
		s.lock = minio.Compliance
	default:
		return nil, fmt.Errorf("archive object lock %q: use governance or compliance", o.ObjectLock)
	}
	return s, nil
}

func (s *S3) String() string { return s.where }

func (s *S3) key(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// Put uploads the file with its MD5 (which object lock requires) and, with object
// lock, its retention.
func (s *S3) Put(ctx context.Context, name string, r io.Reader, size int64, retainUntil time.Time) error {
	// A checksum the store verifies (object lock requires one): CRC32C per part,
	// computed as the parts stream from r, one at a time, rather than an MD5 that
	// would have each part buffered in memory first.
	o := minio.PutObjectOptions{ContentType: "application/octet-stream", Checksum: minio.ChecksumCRC32C, NumThreads: 1}
	if s.lock != "" {
		o.Mode, o.RetainUntilDate = s.lock, retainUntil.UTC()
	}
	if _, err := s.client.PutObject(ctx, s.bucket, s.key(name), r, size, o); err != nil {
		return fmt.Errorf("archiving %s to %s: %w", name, s, err)
	}
	return nil
}

func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", name, s, err)
	}
	// GetObject is lazy: Stat makes the request, so a missing object fails here.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			err = errors.Join(os.ErrNotExist, err)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", name, s, err)
	}
	return obj, nil
}

func (s *S3) List(ctx context.Context) ([]Object, error) {
	prefix := ""
	if s.prefix != "" {
		prefix = s.prefix + "/"
	}
	var out []Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", s, o.Err)
		}
		// Only segments: whatever else shares the bucket is not the archive's to expire.
		if name := strings.TrimPrefix(o.Key, prefix); isSegment(name) {
			out = append(out, Object{Name: name, Size: o.Size, Stored: o.LastModified})
		}
	}
	return out, nil
}

// Delete removes every version of name: in a versioned bucket (object lock needs
// one) a plain delete only hides the data behind a marker. A version still locked
// refuses, and the error says so.
func (s *S3) Delete(ctx context.Context, name string) error {
	key := s.key(name)
	var versions []string
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if o.Err != nil {
			return fmt.Errorf("deleting %s from %s: %w", name, s, o.Err)
		}
		if o.Key == key && o.VersionID != "" {
			versions = append(versions, o.VersionID)
		}
	}
	if len(versions) == 0 {
		versions = []string{""}
	}
	for _, v := range versions {
		if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{VersionID: v}); err != nil {
			return fmt.Errorf("deleting %s from %s: %w", name, s, err)
		}
	}
	return nil
}
