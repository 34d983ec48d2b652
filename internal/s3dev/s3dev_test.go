package s3dev

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/consentgate/consentgate/internal/tier"
)

// The store takes, returns and locks objects: what the archive relies on.
func TestStoreLocksObjects(t *testing.T) {
	tier.Needs(t, "the S3 store (versitygw, built by make s3)")
	s, err := Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("sealed segment")
	_, err = c.PutObject(ctx, Bucket, "a.db", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		Mode: minio.Compliance, RetainUntilDate: time.Now().Add(time.Hour), SendContentMd5: true})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, Bucket, "a.db", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	var versions []string
	for o := range c.ListObjects(ctx, Bucket, minio.ListObjectsOptions{WithVersions: true}) {
		versions = append(versions, o.VersionID)
	}
	if len(versions) != 1 || versions[0] == "" {
		t.Fatalf("versions %q", versions)
	}
	if err := c.RemoveObject(ctx, Bucket, "a.db", minio.RemoveObjectOptions{VersionID: versions[0]}); err == nil {
		t.Error("a locked version was deleted")
	}
}
