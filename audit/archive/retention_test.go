package archive

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/internal/s3dev"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/minio/minio-go/v7"
)

var hmacKey = []byte("0123456789abcdef0123456789abcdef")

// clock is the log's and the policy's time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sealedLog writes n records, for subjects user-0 to user-9, to a log that seals a
// segment every 64 KiB, and closes it.
func sealedLog(t *testing.T, clk *clock, n int) (string, audit.PublicKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path, audit.Options{Node: "node-1", SigningKey: key, Now: clk.Now, SegmentBytes: 64 << 10,
		CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, App: "onboarding-web", Vendor: "kb",
			Operation: "kb.personalData", Purpose: "kyc-onboarding", RequestID: fmt.Sprintf("req-%d", i),
			SubjectHMAC: audit.HMAC(hmacKey, fmt.Sprintf("user-%d", i%10)), Reasons: []string{strings.Repeat("consent active ", 40)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, l.PublicKey()
}

// stores are the archives the tests run against: a directory, and a real
// S3-compatible store with object lock.
func stores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"dir": func(t *testing.T) Store { return Dir{Path: filepath.Join(t.TempDir(), "archive")} },
		"s3": func(t *testing.T) Store {
			tier.Needs(t, "the S3 store (versitygw, built by make s3)")
			srv, err := s3dev.Start(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			s, err := NewS3(S3Options{Endpoint: srv.Endpoint, Bucket: s3dev.Bucket, Prefix: "node-1", AccessKey: srv.AccessKey,
				SecretKey: srv.SecretKey, RootCAs: srv.RootCAs, ObjectLock: "compliance"})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// Segments sealed KeepLocal ago leave the node only once their copy reads back
// the same; the log then verifies from its signed checkpoint here, and from
// record 1 with the archive, where search finds every record of a subject.
func TestRetentionArchivesThenDeletes(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
			path, pub := sealedLog(t, clk, 600)
			segs, _ := audit.Segments(audit.SegmentDir(path))
			if len(segs) < 3 {
				t.Fatalf("%d segments", len(segs))
			}
			before := countSubject(t, []string{}, path)
			s := store(t)
			r := &Retention{SegmentDir: audit.SegmentDir(path), Store: s, PublicKey: pub, KeepLocal: 24 * time.Hour,
				KeepArchive: 7 * 365 * 24 * time.Hour, Now: clk.Now}
			if err := r.Once(ctx); err != nil || r.Stats().Archived != 0 {
				t.Fatalf("before keep_local: %+v, %v", r.Stats(), err)
			}
			clk.add(25 * time.Hour)
			if err := r.Once(ctx); err != nil {
				t.Fatal(err)
			}
			if left, _ := audit.Segments(audit.SegmentDir(path)); len(left) != 0 || r.Stats().Archived != uint64(len(segs)) {
				t.Fatalf("after keep_local: %d segments left here, %+v", len(left), r.Stats())
			}
			objs, err := s.List(ctx)
			if err != nil || len(objs) != len(segs) {
				t.Fatalf("the archive lists %d objects, %v", len(objs), err)
			}
			for _, seg := range segs {
				if !archivedIntact(t, s, seg, pub) {
					t.Errorf("the archive's %s is not the segment", seg.Name())
				}
			}

			local, _ := audit.Files(path)
			rep, err := audit.VerifyFiles(local, pub, audit.RequireVouched())
			if err != nil || rep.Start != segs[len(segs)-1].Last {
				t.Errorf("the node alone: start %d, %v", rep.Start, err)
			}
			all, err := Files(ctx, s, path, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			rep, err = audit.VerifyFiles(all, pub, audit.RequireVouched())
			if err != nil || rep.Start != 1 || rep.Records != 600 {
				t.Errorf("with the archive: start %d, %d records, %v", rep.Start, rep.Records, err)
			}
			if got := countSubject(t, all, ""); got != before {
				t.Errorf("search across the archive found %d records of user-3, want %d", got, before)
			}
		})
	}
}

// archivedIntact reads seg's copy back from the store: a sealed segment that
// verifies alone and holds seg's records.
func archivedIntact(t *testing.T, s Store, seg audit.Segment, pub audit.PublicKey) bool {
	t.Helper()
	p, err := fetch(context.Background(), s, seg.Name(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyDB(p, pub, audit.RequireVouched())
	return err == nil && rep.Start == seg.First && rep.Head.Seq == seg.Last
}

// countSubject counts user-3's records in files (or, if none, in the log at path).
func countSubject(t *testing.T, files []string, path string) int {
	t.Helper()
	if len(files) == 0 {
		var err error
		if files, err = audit.Files(path); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := audit.ExportFiles(context.Background(), files, &buf, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := audit.SearchExport(&buf, audit.HMAC(hmacKey, "user-3"), func(audit.Record) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A segment stays on the node when the copy does not read back the same, when
// it does not verify, and when a stream has not delivered it; nothing is deleted
// that the archive does not hold intact.
func TestRetentionKeepsWhatCannotLeave(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(t *testing.T, r *Retention, segs []audit.Segment)
		want  string
	}{
		{"the copy differs", func(t *testing.T, r *Retention, _ []audit.Segment) {
			r.Store = corrupting{r.Store}
		}, "differs from the segment"},
		{"the segment was altered", func(t *testing.T, r *Retention, segs []audit.Segment) {
			data, err := os.ReadFile(segs[0].Path)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(`"vendor":"kb"`))
			copy(data[i:], `"vendor":"kx"`)
			if err := os.WriteFile(segs[0].Path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "does not verify"},
		{"a stream is behind", func(t *testing.T, r *Retention, segs []audit.Segment) {
			r.Delivered = func() uint64 { return segs[0].Last - 1 }
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
			path, pub := sealedLog(t, clk, 300)
			segs, _ := audit.Segments(audit.SegmentDir(path))
			r := &Retention{SegmentDir: audit.SegmentDir(path), Store: Dir{Path: filepath.Join(t.TempDir(), "archive")}, PublicKey: pub,
				KeepLocal: time.Hour, KeepArchive: 24 * time.Hour, Now: clk.Now}
			tc.setup(t, r, segs)
			clk.add(2 * time.Hour)
			err := r.Once(ctx)
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Once: %v, want an error saying %q", err, tc.want)
			}
			if _, serr := os.Stat(segs[0].Path); serr != nil || r.Stats().Archived != 0 {
				t.Errorf("the first segment left the node (%v, %+v): %v", serr, r.Stats(), err)
			}
		})
	}
}

// corrupting stores a copy with one byte changed: a store that damages data.
type corrupting struct{ Store }

func (c corrupting) Put(ctx context.Context, name string, r io.Reader, size int64, until time.Time) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	data[len(data)/2] ^= 1
	return c.Store.Put(ctx, name, bytes.NewReader(data), size, until)
}

// The archive deletes a segment once it has kept it for KeepArchive; a store
// with object lock refuses to delete it before, whatever the gateway's clock says.
func TestRetentionExpiresTheArchive(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Now()}
			path, pub := sealedLog(t, clk, 150)
			s := store(t)
			r := &Retention{SegmentDir: audit.SegmentDir(path), Store: s, PublicKey: pub, KeepLocal: time.Minute,
				KeepArchive: time.Hour, Now: clk.Now}
			clk.add(2 * time.Minute)
			if err := r.Once(ctx); err != nil || r.Stats().Archived == 0 {
				t.Fatalf("%+v, %v", r.Stats(), err)
			}
			// A clock two hours ahead: the store's lock (until an hour after upload,
			// by its own clock) must hold where there is one.
			clk.add(2 * time.Hour)
			err := r.Once(ctx)
			objs, lerr := s.List(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			switch name {
			case "dir":
				if err != nil || len(objs) != 0 || r.Stats().Expired == 0 {
					t.Errorf("a directory archive after keep_archive: %d objects left, %+v, %v", len(objs), r.Stats(), err)
				}
			case "s3":
				if err == nil || len(objs) == 0 {
					t.Errorf("a locked object was deleted before its retention ended: %d objects, %v", len(objs), err)
				}
			}
		})
	}
}

// An archive that is the segment directory itself (or a link to it) would read
// each segment back as its own copy and delete the only one: refused.
func TestRetentionRefusesTheSegmentDirAsArchive(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	path, pub := sealedLog(t, clk, 300)
	segs, _ := audit.Segments(audit.SegmentDir(path))
	link := filepath.Join(t.TempDir(), "archive")
	if err := os.Symlink(audit.SegmentDir(path), link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{audit.SegmentDir(path), link} {
		r := &Retention{SegmentDir: audit.SegmentDir(path), Store: Dir{Path: dir}, PublicKey: pub, KeepArchive: time.Hour, Now: clk.Now}
		if err := r.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "is where the segments are") {
			t.Errorf("archive %s: %v", dir, err)
		}
		if left, _ := audit.Segments(audit.SegmentDir(path)); len(left) != len(segs) {
			t.Fatalf("archive %s: %d of %d segments left", dir, len(left), len(segs))
		}
	}
}

// The archive lists and expires its segments only: other objects in the bucket
// are not its to delete.
func TestS3ExpiresOnlySegments(t *testing.T) {
	tier.Needs(t, "the S3 store (versitygw, built by make s3)")
	ctx := context.Background()
	srv, err := s3dev.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"README.txt", "reports/q3.csv"} {
		if _, err := c.PutObject(ctx, s3dev.Bucket, name, strings.NewReader("not audit"), 9, minio.PutObjectOptions{SendContentMd5: true}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewS3(S3Options{Endpoint: srv.Endpoint, Bucket: s3dev.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	path, pub := sealedLog(t, clk, 150)
	r := &Retention{SegmentDir: audit.SegmentDir(path), Store: s, PublicKey: pub, KeepArchive: time.Minute, Now: clk.Now}
	if err := r.Once(ctx); err != nil || r.Stats().Archived == 0 {
		t.Fatalf("%+v, %v", r.Stats(), err)
	}
	clk.add(time.Hour)
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	for o := range c.ListObjects(ctx, s3dev.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		left = append(left, o.Key)
	}
	if r.Stats().Expired != r.Stats().Archived || strings.Join(left, ",") != "README.txt,reports/q3.csv" {
		t.Errorf("after expiry: %+v, the bucket holds %q", r.Stats(), left)
	}
}
