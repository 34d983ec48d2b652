package secrets

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/consentgate/consentgate/internal/vaultdev"
)

// fakeKubernetes stands in for the Kubernetes API server's TokenReview
// endpoint, which Vault's kubernetes auth method asks whether a
// service-account token is valid. It accepts only tokens signed with its key.
type fakeKubernetes struct {
	*httptest.Server
	key *rsa.PrivateKey

	mu       sync.Mutex
	reviewed []string
}

const (
	k8sIssuer    = "https://kubernetes.test"
	k8sNamespace = "consentgate"
	k8sAccount   = "consentgate"
	k8sUID       = "5a1b2c3d-0000-4000-8000-000000000001"
)

func newFakeKubernetes(t *testing.T) *fakeKubernetes {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKubernetes{key: key}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		k.mu.Lock()
		k.reviewed = append(k.reviewed, review.Spec.Token)
		k.mu.Unlock()
		status := map[string]any{"authenticated": false, "error": "invalid token"}
		if claims, ok := k.verify(review.Spec.Token); ok {
			status = map[string]any{"authenticated": true, "user": map[string]any{
				"username": "system:serviceaccount:" + claims["kubernetes.io/serviceaccount/namespace"].(string) + ":" +
					claims["kubernetes.io/serviceaccount/service-account.name"].(string),
				"uid": claims["kubernetes.io/serviceaccount/service-account.uid"]}}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
	}))
	t.Cleanup(k.Close)
	return k
}

// jwt makes a legacy service-account token signed (RS256) by signer.
func (k *fakeKubernetes) jwt(t *testing.T, signer *rsa.PrivateKey, account string) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	body := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]string{
		"iss": k8sIssuer, "sub": "system:serviceaccount:" + k8sNamespace + ":" + account,
		"kubernetes.io/serviceaccount/namespace":            k8sNamespace,
		"kubernetes.io/serviceaccount/secret.name":          account + "-token",
		"kubernetes.io/serviceaccount/service-account.name": account,
		"kubernetes.io/serviceaccount/service-account.uid":  k8sUID,
	})
	sum := sha256.Sum256([]byte(body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, signer, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (k *fakeKubernetes) verify(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&k.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	return claims, json.Unmarshal(raw, &claims) == nil
}

func (k *fakeKubernetes) reviews() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.reviewed...)
}

// Kubernetes auth against the real Vault: Vault checks the token's signature
// with the configured key, asks the (stand-in) Kubernetes API to review it, and
// binds it to the role's service account.
func TestVaultKubernetesAuth(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	k8s := newFakeKubernetes(t)
	ctx := context.Background()
	if err := e.srv.EnableAuth(ctx, "kubernetes"); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k8s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]map[string]any{
		"auth/kubernetes/config": {"kubernetes_host": k8s.URL, "disable_local_ca_jwt": true, "issuer": k8sIssuer,
			"kubernetes_ca_cert": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k8s.Certificate().Raw})),
			"pem_keys":           []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))}},
		"auth/kubernetes/role/consentgate": {"bound_service_account_names": k8sAccount,
			"bound_service_account_namespaces": k8sNamespace, "token_policies": vaultdev.PolicyName, "token_ttl": "1h"},
	} {
		if _, err := e.root.Logical().Write(path, body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}

	dir := t.TempDir()
	good := k8s.jwt(t, k8s.key, k8sAccount)
	jwtFile := filepath.Join(dir, "token")
	writeFile(t, jwtFile, good)
	v := e.open(t, VaultOptions{Auth: KubernetesAuth{Role: "consentgate", JWTFile: jwtFile}})
	if got := get(t, v, "vendors/airbank#api_key").Value; got != testValues["vendors/airbank"]["api_key"] {
		t.Error("wrong value with kubernetes auth")
	}
	if r := k8s.reviews(); len(r) != 1 || r[0] != good {
		t.Errorf("the Kubernetes API reviewed %d tokens, want exactly the pod's one", len(r))
	}
	e.assertNoLeak(t, "log", e.logs.String(), good, v.client.Token())

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, jwt string
	}{
		{"signed by another key", k8s.jwt(t, other, k8sAccount)},
		{"another service account", k8s.jwt(t, k8s.key, "intruder")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "token")
			writeFile(t, file, tt.jwt)
			_, err := OpenVault(ctx, VaultOptions{Address: e.srv.Addr, Auth: KubernetesAuth{Role: "consentgate", JWTFile: file}})
			if err == nil || !strings.Contains(err.Error(), "auth/kubernetes/login") {
				t.Fatalf("login accepted or unexplained: %v", err)
			}
			if strings.Contains(err.Error(), tt.jwt) {
				t.Error("the error repeats the service-account token")
			}
		})
	}
	if n := len(k8s.reviews()); n != 1 {
		t.Errorf("refused tokens reached the Kubernetes API (%d reviews): Vault should refuse them first", n)
	}
}
