package configs

import (
	"fmt"
	"os"
	"strings"
)

// CheckFiles reports every file the configuration names that cannot be read, with
// the file, line and field that name it. Load does not do this, so that a
// configuration can be checked on a machine other than the one it runs on;
// `serve` does, before anything listens.
func (c *Config) CheckFiles() error {
	var errs Errors
	check := func(file string, idx index, field, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(c.ResolvePath(path))
		if err != nil {
			errs = append(errs, &FieldError{File: file, Line: idx.line(field), Field: field,
				Msg: fmt.Sprintf("cannot read %s: %v", c.ResolvePath(path), unwrapPath(err))})
			return
		}
		f.Close()
	}
	check(c.File, c.idx, "tls.cert_file", c.TLS.CertFile)
	check(c.File, c.idx, "tls.key_file", c.TLS.KeyFile)
	check(c.File, c.idx, "tls.client_ca_file", c.TLS.ClientCAFile)
	if crl := c.TLS.ClientCRL; crl != nil {
		check(c.File, c.idx, "tls.client_crl.ca_file", crl.CAFile)
		check(c.File, c.idx, "tls.client_crl.issuer_file", crl.IssuerFile)
	}
	if a := c.TLS.ACME; a != nil && a.CARootFile != c.TLS.ClientCAFile {
		check(c.File, c.idx, "tls.acme.ca_root_file", a.CARootFile)
	}
	check(c.File, c.idx, "tls.forward_ca_cert_file", c.TLS.ForwardCACertFile)
	check(c.File, c.idx, "tls.forward_ca_key_file", c.TLS.ForwardCAKeyFile)
	switch c.Secrets.Provider {
	case "file":
		check(c.File, c.idx, "secrets.file.path", c.Secrets.File.Path)
	case "vault":
		vc := c.Secrets.Vault
		check(c.File, c.idx, "secrets.vault.ca_file", vc.CAFile)
		check(c.File, c.idx, "secrets.vault.token_file", vc.TokenFile)
		check(c.File, c.idx, "secrets.vault.role_id_file", vc.RoleIDFile)
		check(c.File, c.idx, "secrets.vault.secret_id_file", vc.SecretIDFile)
		if vc.Auth == "kubernetes" {
			check(c.File, c.idx, "secrets.vault.kubernetes_token_file", vc.KubernetesTokenFile)
		}
	}
	if p := c.Consents.Postgres; p != nil {
		check(c.File, c.idx, "consents.postgres.ca_file", p.CAFile)
	}
	check(c.File, c.idx, "policy.dir", c.Policy.Dir)
	check(c.File, c.idx, "policy.bundle_key_file", c.Policy.BundleKeyFile)
	if !strings.Contains(c.Policy.Bundle, "://") {
		check(c.File, c.idx, "policy.bundle", c.Policy.Bundle)
	}
	for _, v := range c.Vendors {
		check(v.File, v.idx, "upstream.ca_file", v.Upstream.CAFile)
		if p := v.Egress.Proxy; p != nil {
			check(v.File, v.idx, "egress.proxy.ca_file", p.CAFile)
			for _, s := range []struct {
				name string
				s    *Source
			}{{"username", p.Username}, {"password", p.Password}} {
				if s.s != nil {
					check(v.File, v.idx, "egress.proxy."+s.name+".file", s.s.File)
				}
			}
		}
		if cb := v.Callback; cb != nil {
			check(v.File, v.idx, "callback.forward_ca_file", cb.ForwardCAFile)
			check(v.File, v.idx, "callback.client_ca_file", cb.ClientCAFile)
		}
		if cc := v.ClientCertificate; cc != nil {
			sources := []struct {
				name string
				s    *Source
			}{{"cert", cc.Cert}, {"key", cc.Key}, {"pkcs12", cc.PKCS12}, {"password", cc.Password}}
			if k := cc.PKCS11; k != nil {
				check(v.File, v.idx, "client_certificate.pkcs11.module", k.Module)
				sources = append(sources, struct {
					name string
					s    *Source
				}{"pkcs11.pin", k.PIN})
			}
			for _, src := range sources {
				if src.s != nil {
					check(v.File, v.idx, "client_certificate."+src.name+".file", src.s.File)
				}
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
