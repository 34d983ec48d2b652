package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/secrets"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, export and search the audit log"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd(), newAuditPubkeyCmd(), newAuditSearchCmd(), newAuditReportCmd(), newAuditTailCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var db, export, pubkey, anchor string
	var requireVouched bool
	var arch archiveFlags
	cmd := &cobra.Command{
		Use:   "verify (--db FILE | --export FILE) --pubkey FILE",
		Short: "Prove the log complete and untouched, or name the first bad record",
		Long: `Verify the hash chain and the signed checkpoints of an audit log file (the
gateway stopped, or a snapshot) or of an export, with only the public key.
With --db, the sealed segments beside the file are verified with it, as one
chain; with --archive or --archive-config, the archived ones too. A log whose
older segments are not given verifies from the signed checkpoint it starts at,
and says so. Exit 0 with a summary, or exit 1 naming the first bad sequence
number, the segment it is in, and why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(pubkey)
			if err != nil {
				return err
			}
			pub, err := audit.ParsePublicKeyPEM(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", pubkey, err)
			}
			var opts []audit.VerifyOption
			if requireVouched {
				opts = append(opts, audit.RequireVouched())
			}
			if anchor != "" {
				raw, err := os.ReadFile(anchor)
				if err != nil {
					return err
				}
				var h audit.Head
				if err := json.Unmarshal(raw, &h); err != nil {
					return fmt.Errorf("--anchor %s: %w", anchor, err)
				}
				opts = append(opts, audit.Anchor(h))
			}
			var rep audit.Report
			switch {
			case db != "" && export == "":
				files, done, ferr := arch.files(cmd.Context(), db)
				if ferr != nil {
					return ferr
				}
				defer done()
				rep, err = audit.VerifyFiles(files, pub, opts...)
			case export != "" && db == "":
				if arch.set() {
					return errNotWithExport
				}
				f, ferr := os.Open(export)
				if ferr != nil {
					return ferr
				}
				defer f.Close()
				rep, err = audit.Verify(f, pub, opts...)
			default:
				return errors.New("give exactly one of --db or --export")
			}
			if err != nil {
				return fmt.Errorf("NOT VERIFIED: %w", err)
			}
			printReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "audit.db file (not in use by a running gateway); its sealed segments are read too")
	cmd.Flags().StringVar(&export, "export", "", "export file (JSONL)")
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "public key PEM (consentgate audit pubkey)")
	cmd.Flags().BoolVar(&requireVouched, "require-vouched", false, "fail on records after the last signed checkpoint (use on a file the gateway closed cleanly)")
	cmd.Flags().StringVar(&anchor, "anchor", "", "a head kept earlier (JSON from /v1/audit/head): the log must still contain it, which detects truncation back to a checkpoint")
	arch.flags(cmd)
	cmd.MarkFlagRequired("pubkey")
	return cmd
}

func printReport(w io.Writer, r audit.Report) {
	fmt.Fprintf(w, "verified: %d records, %d checkpoints\n", r.Records, r.Checkpoints)
	if r.Start > 1 {
		fmt.Fprintf(w, "the chain starts at record %d, a signed checkpoint: the history before it is not in what was verified (pruned or archived)\n", r.Start)
	}
	if r.Records > 0 {
		fmt.Fprintf(w, "from %s to %s\n", r.First.UTC().Format(time.RFC3339Nano), r.Last.UTC().Format(time.RFC3339Nano))
	}
	if r.Partial {
		fmt.Fprintln(w, "partial export: records outside the filter are present only as hashes")
	}
	if r.Unvouched > 0 {
		fmt.Fprintf(w, "warning: %d records after the last checkpoint are not yet vouched for by a signature\n", r.Unvouched)
	}
	if len(r.Incomplete) > 0 {
		fmt.Fprintf(w, "incomplete requests (intent without outcome): %d\n", len(r.Incomplete))
		for _, id := range r.Incomplete {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
}

type exportFlags struct {
	merge                      bool
	pubkeys                    []string
	db, admin, out, format     string
	cert, key, cacert          string
	from, to                   string
	vendor, app, purpose, cons string
	archive                    archiveFlags // with db
}

func (f *exportFlags) filter() (audit.Filter, error) {
	var af audit.Filter
	var err error
	if f.from != "" {
		if af.From, err = time.Parse(time.RFC3339, f.from); err != nil {
			return af, fmt.Errorf("--from: %w", err)
		}
	}
	if f.to != "" {
		if af.To, err = time.Parse(time.RFC3339, f.to); err != nil {
			return af, fmt.Errorf("--to: %w", err)
		}
	}
	af.Vendor, af.App, af.Purpose, af.Consent = f.vendor, f.app, f.purpose, f.cons
	return af, nil
}

func newAuditExportCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export (--db FILE | --admin URL --cert F --key F --cacert F | --merge --pubkey P EXPORT...)",
		Short: "Stream the audit log as JSONL, whole or filtered, still verifiable",
		Long: `Export the audit log from a file, or from the running gateway's admin API
with an auditor or admin certificate. A filtered export stays verifiable: records
outside the filter are carried as hashes only and the export says it is partial.

With --merge, the arguments are exports of several replicas (each keeps its own
chain): each is verified with the --pubkey matching its header, and only if all
verify are their records written as one timeline ordered by time. The merged
stream is for reading (or --format csv); the per-replica exports stay the evidence.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.merge && len(args) == 0 {
				return errors.New("--merge needs the export files to merge")
			}
			if !f.merge && len(args) > 0 {
				return fmt.Errorf("unexpected argument %q (export files are merged only with --merge)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "jsonl" && f.format != "csv" {
				return fmt.Errorf("--format %q: use jsonl or csv", f.format)
			}
			if f.merge {
				return mergeExports(cmd, f, args)
			}
			filter, err := f.filter()
			if err != nil {
				return err
			}
			return writeExport(cmd, f, func(w io.Writer) error { return exportTo(cmd.Context(), f, filter, w) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "audit.db file (not in use by a running gateway); its sealed segments are read too")
	fl.StringVar(&f.admin, "admin", "", "admin URL of a running gateway, e.g. https://127.0.0.1:9443")
	fl.StringVar(&f.cert, "cert", "", "auditor certificate (with --admin)")
	fl.StringVar(&f.key, "key", "", "auditor key (with --admin)")
	fl.StringVar(&f.cacert, "cacert", "", "internal CA (with --admin)")
	fl.StringVar(&f.out, "out", "", "write to FILE instead of stdout")
	fl.StringVar(&f.format, "format", "jsonl", "jsonl (verifiable) or csv (a view for spreadsheets)")
	fl.StringVar(&f.from, "from", "", "RFC 3339 time: records at or after")
	fl.StringVar(&f.to, "to", "", "RFC 3339 time: records before")
	fl.StringVar(&f.vendor, "vendor", "", "only this vendor")
	fl.StringVar(&f.app, "app", "", "only this app")
	fl.StringVar(&f.purpose, "purpose", "", "only this purpose")
	fl.StringVar(&f.cons, "consent", "", "only this consent id")
	fl.BoolVar(&f.merge, "merge", false, "verify the export files given as arguments and merge them by time")
	fl.StringArrayVar(&f.pubkeys, "pubkey", nil, "with --merge: a replica's public key PEM (repeat for each key)")
	f.archive.flags(cmd)
	return cmd
}

// mergeExports verifies every export before writing anything: a merged
// timeline must never include a chain that does not verify.
func mergeExports(cmd *cobra.Command, f exportFlags, files []string) error {
	if len(f.pubkeys) == 0 {
		return errors.New("--merge needs --pubkey (one per replica key)")
	}
	if f.db != "" || f.admin != "" || f.from != "" || f.to != "" || f.vendor != "" || f.app != "" || f.purpose != "" || f.cons != "" {
		return errors.New("--merge takes export files only: filter when exporting each replica")
	}
	keys := map[string]audit.PublicKey{} // by fingerprint
	for _, file := range f.pubkeys {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		pub, err := audit.ParsePublicKeyPEM(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		keys[audit.Fingerprint(pub)] = pub
	}
	for _, file := range files {
		rep, err := verifyExportFile(file, keys)
		if err != nil {
			return fmt.Errorf("NOT MERGED: %s: %w", file, err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: verified, node %s, %d records\n", file, rep.node, rep.Records)
	}
	var readers []io.Reader
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			return err
		}
		defer fh.Close()
		readers = append(readers, fh)
	}
	return writeExport(cmd, f, func(w io.Writer) error {
		_, err := audit.Merge(w, readers...)
		return err
	})
}

// writeExport runs produce, which writes a JSONL export, into --out or stdout,
// as JSONL or through the CSV view. CSV is for spreadsheets: it is not
// verifiable on its own.
func writeExport(cmd *cobra.Command, f exportFlags, produce func(io.Writer) error) (err error) {
	w := cmd.OutOrStdout()
	if f.out != "" {
		file, err := os.OpenFile(f.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		// An export is evidence: a write that fails only at close must not pass.
		defer func() {
			if cerr := file.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("writing %s: %w", f.out, cerr)
			}
		}()
		w = file
	}
	if f.format != "csv" {
		return produce(w)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- audit.WriteCSV(pr, w); pr.Close() }()
	err = produce(pw)
	pw.CloseWithError(err)
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}

type verifiedExport struct {
	audit.Report
	node string
}

// verifyExportFile verifies one export with the key its header names, which
// must be one of keys.
func verifyExportFile(file string, keys map[string]audit.PublicKey) (verifiedExport, error) {
	fh, err := os.Open(file)
	if err != nil {
		return verifiedExport{}, err
	}
	defer fh.Close()
	var hdr struct {
		Node      string `json:"node"`
		PublicKey string `json:"public_key"`
	}
	if err := json.NewDecoder(fh).Decode(&hdr); err != nil {
		return verifiedExport{}, fmt.Errorf("not an audit export: %w", err)
	}
	raw, err := hex.DecodeString(hdr.PublicKey)
	if err != nil {
		return verifiedExport{}, fmt.Errorf("not an audit export: public_key: %w", err)
	}
	fingerprint := sha256.Sum256(raw) // as audit.Fingerprint names a key: its raw bytes' hash
	pub, ok := keys[hex.EncodeToString(fingerprint[:])]
	if !ok {
		return verifiedExport{}, fmt.Errorf("signed by key %.16s…, which is none of the --pubkey keys", hdr.PublicKey)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return verifiedExport{}, err
	}
	rep, err := audit.Verify(fh, pub)
	return verifiedExport{Report: rep, node: hdr.Node}, err
}

func exportTo(ctx context.Context, f exportFlags, filter audit.Filter, w io.Writer) error {
	switch {
	case f.db != "" && f.admin == "":
		files, done, err := f.archive.files(ctx, f.db)
		if err != nil {
			return err
		}
		defer done()
		return audit.ExportFiles(ctx, files, w, filter)
	case f.archive.set():
		return errNotWithExport
	case f.admin != "" && f.db == "":
		return exportFromAdmin(ctx, f, w)
	default:
		return errors.New("give exactly one of --db or --admin")
	}
}

// adminClient is an HTTP client with the auditor's certificate.
func adminClient(cert, key, cacert string) (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("--cert/--key: %w", err)
	}
	pool, err := certs.LoadPool(cacert)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}, nil
}

// adminConnFlags adds the required flags that reach a running gateway's admin
// API (--admin, --cert, --key, --cacert) into f; who says whose certificate.
func adminConnFlags(cmd *cobra.Command, f *exportFlags, who string) {
	fl := cmd.Flags()
	fl.StringVar(&f.admin, "admin", "", "admin URL of the running gateway, e.g. https://127.0.0.1:9443")
	fl.StringVar(&f.cert, "cert", "", who+" certificate")
	fl.StringVar(&f.key, "key", "", "its key")
	fl.StringVar(&f.cacert, "cacert", "", "internal CA")
	for _, name := range []string{"admin", "cert", "key", "cacert"} {
		cmd.MarkFlagRequired(name)
	}
}

// adminCall sends one request to a gateway's admin API (with body, JSON, if
// not nil) and reads the answer (at most limit bytes); an answer other than
// 200 is an error with its text.
func adminCall(ctx context.Context, client *http.Client, method, url string, body any, limit int64) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API %s: %s: %s", url, resp.Status, bytes.TrimSpace(answer))
	}
	return answer, nil
}

func exportFromAdmin(ctx context.Context, f exportFlags, w io.Writer) error {
	client, err := adminClient(f.cert, f.key, f.cacert)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"from": f.from, "to": f.to, "vendor": f.vendor, "app": f.app, "purpose": f.purpose, "consent": f.cons} {
		if v != "" {
			q.Set(k, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.admin+"/v1/audit/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("admin API: %s: %s", resp.Status, body)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func newAuditPubkeyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "pubkey --config FILE",
		Short: "Print the public key that verifies this gateway's audit checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, p, err := loadForAudit(cmd.Context(), file)
			if err != nil {
				return err
			}
			defer closeSecrets(p, slog.New(slog.DiscardHandler))
			key, err := auditSigningKey(cmd.Context(), cfg, p)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(audit.PublicKeyPEM(key.Public()))
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "configs/consentgate.yaml", "configuration file (for the secret provider)")
	return cmd
}

func newAuditSearchCmd() *cobra.Command {
	var file, subject string
	var src auditSource
	cmd := &cobra.Command{
		Use:   "search --subject VALUE (--db FILE | --export FILE | --admin URL --cert F --key F --cacert F) --pubkey FILE [--config FILE]",
		Short: "Find every record about a person by app user id, birth number, IIN or document number",
		Long: `Answer "what did you disclose about this person?" without the log holding the
raw identifier: VALUE is hashed with the gateway's subject key and matched
against the subject and identifier HMACs of every record.

With --admin and an auditor certificate, the running gateway hashes VALUE (the
lookup is itself recorded) and, unless --db or --export names the records to
search, streams its log. Otherwise --config names the configuration whose
secret provider holds the key. The records are verified with --pubkey first:
records that do not verify are not searched (--unverified searches them and
marks every result "unverified": true).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var terms []string
			var err error
			if src.admin.admin != "" {
				_, terms, err = subjectHMACFromAdmin(ctx, src.admin, subject)
			} else {
				_, terms, err = subjectHMACFromConfig(ctx, file, src.db, subject)
			}
			if err != nil {
				return err
			}
			if src.db != "" || src.export != "" {
				src.admin.admin = "" // the records come from the file, the HMAC from the gateway
			}
			r, err := src.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			n := 0
			err = audit.SearchExportTerms(r, terms, func(rec audit.Record) error {
				n++
				if !src.unverified {
					return enc.Encode(rec)
				}
				return enc.Encode(struct {
					audit.Record
					Unverified bool `json:"unverified"`
				}{rec, true})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d records\n", n)
			return nil
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&file, "config", "configs/consentgate.yaml", "configuration file (for the secret provider), without --admin")
	cmd.Flags().StringVar(&subject, "subject", "", "app user id, birth number, IIN or document number")
	cmd.Flags().StringVar(&src.admin.admin, "admin", "", "admin URL of a running gateway, e.g. https://127.0.0.1:9443")
	cmd.Flags().StringVar(&src.admin.cert, "cert", "", "auditor certificate (with --admin)")
	cmd.Flags().StringVar(&src.admin.key, "key", "", "auditor key (with --admin)")
	cmd.Flags().StringVar(&src.admin.cacert, "cacert", "", "internal CA (with --admin)")
	cmd.MarkFlagRequired("subject")
	return cmd
}

// subjectHMACFromConfig hashes value with the key the configuration's secret
// provider holds.
// The terms are the HMAC's forms in records under link keys, from the link keys
// beside db (else beside the configuration's audit log): the gateway stopped.
func subjectHMACFromConfig(ctx context.Context, file, db, value string) (string, []string, error) {
	cfg, p, err := loadForAudit(ctx, file)
	if err != nil {
		return "", nil, err
	}
	defer closeSecrets(p, slog.New(slog.DiscardHandler))
	ref, err := secrets.ParseRef(cfg.Keys.SubjectHMAC)
	if err != nil {
		return "", nil, err
	}
	key, err := p.Get(ctx, ref)
	if err != nil {
		return "", nil, err
	}
	h := audit.HMAC([]byte(key.Value), value)
	terms, err := audit.LinkTerms(cmp.Or(db, cfg.ResolvePath(cfg.Audit.Path)), h, audit.SubjectHMAC([]byte(key.Value), value))
	return h, terms, err
}

// subjectHMACFromAdmin asks the running gateway, which records the lookup, for
// the HMAC and its forms under link keys.
func subjectHMACFromAdmin(ctx context.Context, f exportFlags, value string) (string, []string, error) {
	client, err := adminClient(f.cert, f.key, f.cacert)
	if err != nil {
		return "", nil, err
	}
	body, _ := json.Marshal(map[string]string{"subject": value})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.admin+"/v1/audit/subject-hmac", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var out struct {
		SubjectHMAC string   `json:"subject_hmac"`
		Terms       []string `json:"terms"`
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", nil, fmt.Errorf("admin API: %s: %s", resp.Status, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SubjectHMAC == "" {
		return "", nil, fmt.Errorf("admin API: no subject_hmac in the answer")
	}
	return out.SubjectHMAC, append(out.Terms, out.SubjectHMAC), nil
}

// loadForAudit loads the configuration and opens its secret provider; the
// caller closes the provider with closeSecrets (a Vault token is revoked).
func loadForAudit(ctx context.Context, file string) (*configs.Config, secrets.Provider, error) {
	cfg, err := loadConfig(file, "")
	if err != nil {
		return nil, nil, err
	}
	p, err := openSecrets(ctx, cfg, slog.New(slog.DiscardHandler))
	return cfg, p, err
}

// auditSigningKey finds the checkpoint key in its HSM, or reads it (PKCS#8 PEM,
// Ed25519 or ECDSA P-256) from the provider.
func auditSigningKey(ctx context.Context, cfg *configs.Config, p secrets.Provider) (crypto.Signer, error) {
	if k := cfg.Keys.AuditSigningPKCS11; k != nil {
		return proxy.TokenSigner(ctx, cfg, p, "keys.audit_signing_pkcs11", k)
	}
	s, err := readKey(ctx, p, "keys.audit_signing", cfg.Keys.AuditSigning)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("keys.audit_signing: not a PEM private key")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keys.audit_signing: %w", err)
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("keys.audit_signing: %T is not an Ed25519 or ECDSA P-256 key", key)
}

func newAuditReportCmd() *cobra.Command {
	var from, to, format, file, subject string
	var src auditSource
	cmd := &cobra.Command{
		Use:   "report (--db FILE | --export FILE | --admin URL ...) --pubkey FILE [--from T] [--to T] [--config FILE] [--subject VALUE] [--format md|json]",
		Short: "Processing report: transfers by purpose, data category, recipient and app; one person's consents and erasures",
		Long: `Summarise what was disclosed to which recipient (vendor), for which purpose and
app, with the data categories and the counts of disclosures (calls that sent or
returned personal data), calls that carried only ids and statuses, and denials:
the facts a GDPR Art. 30 record of processing needs. With --config, each
recipient says how an end user's data is erased there (the profile's erasure
operation, or why there is none). With --subject (hashed by the gateway with
--admin, or with the key of --config), the report is about one person and shows
where the erasure of each of their withdrawn consents stands. The records are
verified with --pubkey first: a report is never made from records that do not
verify (--unverified makes one and says so at its top). Markdown or JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := reportOptions(cmd.Context(), from, to, file, subject, &src)
			if err != nil {
				return err
			}
			return writeReport(cmd.Context(), cmd.OutOrStdout(), &src, o, format)
		},
	}
	src.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "RFC 3339 time: records at or after")
	fl.StringVar(&to, "to", "", "RFC 3339 time: records before")
	fl.StringVar(&format, "format", "md", "md or json")
	fl.StringVar(&file, "config", "", "configuration file: the vendor profiles' erasure paths (and, without --admin, the key for --subject)")
	fl.StringVar(&subject, "subject", "", "one person: app user id, birth number, IIN or document number")
	fl.StringVar(&src.admin.admin, "admin", "", "admin URL of a running gateway (its log, and the hashing of --subject)")
	fl.StringVar(&src.admin.cert, "cert", "", "auditor certificate (with --admin)")
	fl.StringVar(&src.admin.key, "key", "", "auditor key (with --admin)")
	fl.StringVar(&src.admin.cacert, "cacert", "", "internal CA (with --admin)")
	return cmd
}

// reportOptions are the period, the erasure paths of --config and the
// person of --subject, hashed as the log holds it.
func reportOptions(ctx context.Context, from, to, file, subject string, src *auditSource) (audit.ProcessingOptions, error) {
	var o audit.ProcessingOptions
	var err error
	if o.From, o.To, err = reportPeriod(from, to); err != nil {
		return o, err
	}
	if file != "" {
		if o.Erasure, err = erasurePaths(file); err != nil {
			return o, err
		}
	}
	if subject != "" {
		if src.admin.admin != "" {
			o.Subject, o.Terms, err = subjectHMACFromAdmin(ctx, src.admin, subject)
		} else {
			o.Subject, o.Terms, err = subjectHMACFromConfig(ctx, cmp.Or(file, "configs/consentgate.yaml"), src.db, subject)
		}
	}
	return o, err
}

// writeReport reads the records (verified unless --unverified) and writes the
// report as Markdown or JSON.
func writeReport(ctx context.Context, w io.Writer, src *auditSource, o audit.ProcessingOptions, format string) error {
	if src.db != "" || src.export != "" {
		src.admin.admin = ""
	}
	r, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := audit.Processing(r, o)
	if err != nil {
		return err
	}
	rep.Unverified = src.unverified
	switch format {
	case "md":
		_, err = io.WriteString(w, rep.Markdown())
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	default:
		err = fmt.Errorf("--format %q: use md or json", format)
	}
	return err
}

func reportPeriod(from, to string) (f, t time.Time, err error) {
	if from != "" {
		if f, err = time.Parse(time.RFC3339, from); err != nil {
			return f, t, fmt.Errorf("--from: %w", err)
		}
	}
	if to != "" {
		if t, err = time.Parse(time.RFC3339, to); err != nil {
			return f, t, fmt.Errorf("--to: %w", err)
		}
	}
	return f, t, nil
}

// erasurePaths says per vendor of the configuration how an end user's data is
// erased there.
func erasurePaths(file string) (map[string]string, error) {
	cfg, err := loadConfig(file, "")
	if err != nil {
		return nil, err
	}
	return erasureWays(cfg.Vendors), nil
}

// erasureWays maps each vendor to how an end user's data is erased there (its
// profile's erasure operation, or why there is none), for the access report.
func erasureWays(vendors []*configs.Vendor) map[string]string {
	out := map[string]string{}
	for _, v := range vendors {
		if v.Erasure.Unavailable != "" {
			out[v.ID] = audit.ErasureUnavailable(v.Erasure.Unavailable)
		}
		for _, op := range v.Operations {
			if op.Erases != "" {
				out[v.ID] = "by " + op.ID
			}
		}
	}
	return out
}

func newAuditTailCmd() *cobra.Command {
	var admin, cert, key, cacert string
	var after uint64
	cmd := &cobra.Command{
		Use:   "tail --admin URL --cert F --key F --cacert F [--after SEQ]",
		Short: "Follow the running gateway's audit log, one JSON record per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := adminClient(cert, key, cacert)
			if err != nil {
				return err
			}
			client.Timeout = time.Minute
			for cmd.Context().Err() == nil {
				req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet,
					fmt.Sprintf("%s/v1/audit/tail?after=%d", admin, after), nil)
				if err != nil {
					return err
				}
				resp, err := client.Do(req)
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if resp.StatusCode != http.StatusOK {
					body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
					resp.Body.Close()
					return fmt.Errorf("admin API: %s: %s", resp.Status, body)
				}
				dec := json.NewDecoder(resp.Body)
				for {
					var raw json.RawMessage
					if err := dec.Decode(&raw); err != nil {
						break
					}
					var r struct {
						Seq uint64 `json:"seq"`
					}
					json.Unmarshal(raw, &r)
					after = max(after, r.Seq)
					fmt.Fprintln(cmd.OutOrStdout(), string(raw))
				}
				resp.Body.Close()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "https://127.0.0.1:9443", "admin URL of the running gateway")
	cmd.Flags().StringVar(&cert, "cert", "", "auditor certificate")
	cmd.Flags().StringVar(&key, "key", "", "auditor key")
	cmd.Flags().StringVar(&cacert, "cacert", "", "internal CA")
	cmd.Flags().Uint64Var(&after, "after", 0, "start after this sequence number (0: from the beginning)")
	return cmd
}
