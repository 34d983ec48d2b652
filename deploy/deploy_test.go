// Tests of the deployment artefacts. No Docker engine or systemd runs here, so
// each file is parsed and checked for what matters: the image is multi-stage,
// distroless and non-root with no secret baked in; the compose file keeps the
// gateway's root file system read-only and its Vault seeding works against a
// real Vault server; the systemd unit is sandboxed; and the Helm chart, rendered
// with Go's text/template and the few Helm and Sprig functions it uses, yields
// hardened, consistent Kubernetes objects whose consentgate.yaml loads with the
// real configuration loader and the node each pod gets from its name.
//
// `make chart-check` (part of `make test`) renders the same chart, with the
// same values variants (ci/), with the real `helm template` and validates every
// object with kubeconform against the Kubernetes API schemas: the schemas catch
// unknown fields and wrong types, which these checks do not look for; these
// checks catch what a schema cannot (hardening, consistency between objects,
// the gateway's own configuration).
//
// Every check function returns the problems it finds, and a table of broken
// variants proves each check can fail.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/tier"
)

const (
	dataDir   = "/var/lib/consentgate"
	chartDir  = "helm/consentgate"
	podName   = "consentgate-0" // what the render-config init container writes
	configArg = "/etc/consentgate/consentgate.yaml"
)

// wantPorts are the listeners: gateway, forward proxy, admin, and callbacks
// (vendors calling back, browsers back from bank logins).
var wantPorts = map[string]int{"gateway": 8443, "forward": 8444, "admin": 9443, "callbacks": 8445}

// secretName matches variable names that would hold a secret.
var secretName = regexp.MustCompile(`(?i)(passw|secret|token|api_?key|private_?key|credential|access_?key)`)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// expectProblems fails t with every problem, or, when want is set, checks that
// some problem mentions it (a broken variant must be caught).
func expectProblems(t *testing.T, problems []string, want string) {
	t.Helper()
	if want == "" {
		for _, p := range problems {
			t.Error(p)
		}
		return
	}
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("no problem mentions %q; got %q", want, problems)
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	base, name string
	instrs     []instruction
}

type dockerfile struct {
	global []instruction // ARGs before the first FROM
	stages []stage
}

// parseDockerfile reads instructions (joining \ continuations, dropping
// comments and parser directives) and groups them by FROM.
func parseDockerfile(src string) (dockerfile, error) {
	var df dockerfile
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		var b strings.Builder
		for strings.HasSuffix(l, `\`) {
			b.WriteString(strings.TrimRight(strings.TrimSuffix(l, `\`), " \t"))
			b.WriteString(" ")
			l = ""
			for i+1 < len(lines) {
				i++
				next := strings.TrimSpace(lines[i])
				if next == "" || strings.HasPrefix(next, "#") {
					continue // comments and blank lines inside a continuation
				}
				l = next
				break
			}
		}
		b.WriteString(l)
		cmd, args, _ := strings.Cut(strings.TrimSpace(b.String()), " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			var st stage
			f := strings.Fields(in.args)
			for j := 0; j < len(f); j++ {
				switch {
				case strings.HasPrefix(f[j], "--"):
				case strings.EqualFold(f[j], "AS") && j+1 < len(f):
					st.name = f[j+1]
					j++
				case st.base == "":
					st.base = f[j]
				}
			}
			if st.base == "" {
				return df, fmt.Errorf("line %d: FROM without an image", start)
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			if in.cmd != "ARG" {
				return df, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
			}
			df.global = append(df.global, in)
			continue
		}
		st := &df.stages[len(df.stages)-1]
		st.instrs = append(st.instrs, in)
	}
	return df, nil
}

// words splits s at blanks outside quotes and removes the quotes.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote != 0 && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// keyValues parses the arguments of ENV, ARG and LABEL: k=v pairs, or the
// legacy "ENV key value".
func keyValues(args string) map[string]string {
	out := map[string]string{}
	w := words(args)
	if len(w) > 0 && !strings.Contains(w[0], "=") {
		if len(w) == 1 {
			out[w[0]] = "" // ARG name
		} else {
			out[w[0]] = strings.Join(w[1:], " ")
		}
		return out
	}
	for _, kv := range w {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func execForm(args string) ([]string, bool) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return nil, false
	}
	return v, true
}

// checkDockerfile returns what is wrong with the image definition. goMinor is
// the Go version of go.mod ("1.26"), which the build stage must use.
func checkDockerfile(df dockerfile, goMinor string) []string {
	var p problems
	if len(df.stages) < 2 {
		p.add("not multi-stage: %d stage(s); the toolchain must stay out of the final image", len(df.stages))
	}
	if len(df.stages) == 0 {
		return p
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]
	if !strings.HasPrefix(build.base, "golang:"+goMinor) {
		p.add("build stage image %q: want golang:%s (go.mod)", build.base, goMinor)
	}
	if !strings.HasPrefix(final.base, "gcr.io/distroless/") && final.base != "scratch" {
		p.add("final stage image %q is neither distroless nor scratch", final.base)
	}
	all := slices.Clone(df.global)
	for _, st := range df.stages {
		all = append(all, st.instrs...)
	}
	for _, in := range all {
		switch in.cmd {
		case "ADD":
			if strings.Contains(in.args, "http://") || strings.Contains(in.args, "https://") || strings.Contains(in.args, "git@") {
				p.add("line %d: ADD of a remote source (%s): download with a verified checksum instead", in.line, in.args)
			}
		case "ENV", "ARG":
			for k, v := range keyValues(in.args) {
				if secretName.MatchString(k) || strings.Contains(v, "PRIVATE KEY") {
					p.add("line %d: %s %s looks like a secret: secrets are mounted at run time, never baked into the image", in.line, in.cmd, k)
				}
			}
		}
	}
	var user string
	var ports []string
	var volumes, entrypoint, cmd []string
	labels := map[string]string{}
	for _, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = in.args
		case "COPY", "ADD":
			if in.cmd == "ADD" || !strings.Contains(in.args, "--from=") {
				p.add("line %d: the final stage takes %s %s from the build context: only build outputs may reach the image", in.line, in.cmd, in.args)
			}
		case "EXPOSE":
			for _, f := range strings.Fields(in.args) {
				ports = append(ports, strings.TrimSuffix(f, "/tcp"))
			}
		case "VOLUME":
			if v, ok := execForm(in.args); ok {
				volumes = append(volumes, v...)
			} else {
				volumes = append(volumes, strings.Fields(in.args)...)
			}
		case "ENTRYPOINT":
			entrypoint, _ = execForm(in.args)
		case "CMD":
			cmd, _ = execForm(in.args)
		case "LABEL":
			for k, v := range keyValues(in.args) {
				labels[k] = v
			}
		}
	}
	if user == "" {
		p.add("the final stage sets no USER: the gateway would run as root")
	} else if uid, err := strconv.Atoi(strings.SplitN(user, ":", 2)[0]); err != nil {
		p.add("USER %q is not numeric: Kubernetes' runAsNonRoot cannot verify a user name", user)
	} else if uid == 0 {
		p.add("USER %q is root", user)
	}
	for _, port := range wantPorts {
		if !slices.Contains(ports, strconv.Itoa(port)) {
			p.add("EXPOSE lacks %d", port)
		}
	}
	if !slices.Contains(volumes, dataDir) {
		p.add("no VOLUME %s: audit.db and state.db would live in the container layer", dataDir)
	}
	if !slices.Equal(entrypoint, []string{"/consentgate"}) {
		p.add("ENTRYPOINT %q: want exec form [\"/consentgate\"]", entrypoint)
	}
	if !slices.Equal(cmd, []string{"serve", "--config", configArg}) {
		p.add("CMD %q: want [\"serve\", \"--config\", %q]", cmd, configArg)
	}
	for _, k := range []string{"title", "description", "source", "version", "revision"} {
		if labels["org.opencontainers.image."+k] == "" {
			p.add("no LABEL org.opencontainers.image.%s", k)
		}
	}
	static := false
	for _, st := range df.stages[:len(df.stages)-1] {
		for _, in := range st.instrs {
			if in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "go build") && strings.Contains(in.args, "-trimpath") {
				static = true
			}
		}
	}
	if !static {
		p.add("no RUN CGO_ENABLED=0 go build -trimpath in a build stage: distroless/static needs a static binary")
	}
	return p
}

func goMinor(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read(t, "../go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

func TestDockerfile(t *testing.T) {
	src := read(t, "Dockerfile")
	minor := goMinor(t)
	df, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, checkDockerfile(df, minor), "")

	// Each broken variant must be caught.
	cases := []struct {
		name, old, new, want string
	}{
		{"root user", "USER 65532:65532", "USER root", "not numeric"},
		{"uid 0", "USER 65532:65532", "USER 0:0", "is root"},
		{"no user", "USER 65532:65532", "", "no USER"},
		{"full base image", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "neither distroless"},
		{"remote ADD", "USER 65532:65532", "ADD https://example.com/tool /tool\nUSER 65532:65532", "ADD of a remote source"},
		{"secret ENV", "USER 65532:65532", "ENV VAULT_TOKEN=s.abc\nUSER 65532:65532", "looks like a secret"},
		{"secret ARG", "ARG VERSION=dev", "ARG API_KEY\nARG VERSION=dev", "looks like a secret"},
		{"context copy", "COPY --from=build /consentgate /consentgate", "COPY . /", "from the build context"},
		{"no volume", `VOLUME ["/var/lib/consentgate"]`, "", "no VOLUME"},
		{"shell entrypoint", `ENTRYPOINT ["/consentgate"]`, "ENTRYPOINT /consentgate", "ENTRYPOINT"},
		{"port missing", "EXPOSE 8443 8444 8445 9443", "EXPOSE 8443", "EXPOSE lacks 9443"},
		{"cgo", "CGO_ENABLED=0 go build", "go build", "static binary"},
		{"old toolchain", "FROM golang:1.26 AS build", "FROM golang:1.22 AS build", "build stage image"},
		{"single stage", "", "", "not multi-stage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			broken := "FROM scratch\nUSER 1\n"
			if c.old != "" {
				if !strings.Contains(src, c.old) {
					t.Fatalf("Dockerfile no longer contains %q: update this case", c.old)
				}
				broken = strings.Replace(src, c.old, c.new, 1)
			}
			df, err := parseDockerfile(broken)
			if err != nil {
				t.Fatal(err)
			}
			expectProblems(t, checkDockerfile(df, minor), c.want)
		})
	}
}

func TestDockerfileParser(t *testing.T) {
	df, err := parseDockerfile("# syntax=docker/dockerfile:1\nARG V=1\nFROM --platform=$BUILDPLATFORM golang:1.26 as b\nRUN a \\\n  # comment\n  b\nFROM scratch\nLABEL a=\"x y\" b=z\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(df.global) != 1 || len(df.stages) != 2 || df.stages[0].base != "golang:1.26" || df.stages[0].name != "b" {
		t.Fatalf("parsed %+v", df)
	}
	if got := df.stages[0].instrs[0].args; got != "a b" {
		t.Errorf("continuation joined to %q", got)
	}
	if got := keyValues(df.stages[1].instrs[0].args); got["a"] != "x y" || got["b"] != "z" {
		t.Errorf("labels %v", got)
	}
	if _, err := parseDockerfile("RUN x\nFROM scratch\n"); err == nil {
		t.Error("RUN before FROM accepted")
	}
}

// The build context is the repository root: the dev PKI and secrets under
// .consentgate/ must never be sent to the builder.
func TestDockerignore(t *testing.T) {
	lines := strings.Split(read(t, "Dockerfile.dockerignore"), "\n")
	for _, want := range []string{".consentgate", ".git", "**/*.test"} {
		if !slices.Contains(lines, want) {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", want)
		}
	}
}

// ---------------------------------------------------------------------------
// YAML helpers

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any         { l, _ := v.([]any); return l }
func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// dig follows map keys (string) and list indexes (int).
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			v = asMap(v)[k]
		case int:
			l := asList(v)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		return int(x), nil
	case string:
		return strconv.Atoi(x)
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}

func containsString(l []any, s string) bool {
	for _, v := range l {
		if asString(v) == s {
			return true
		}
	}
	return false
}

func loadYAML(t *testing.T, name string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(read(t, name)), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

// ---------------------------------------------------------------------------
// compose.yaml

type mount struct {
	source, target string
	readOnly       bool
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// withDefaults resolves ${VAR:-default} to its default (variables are unset
// here) and other references to "".
func withDefaults(s string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if strings.HasSuffix(m[2], "-") {
			return m[3]
		}
		return ""
	})
}

// splitVolume splits short volume syntax at the colons outside ${...}.
func splitVolume(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
		case s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func composeMounts(v any) []mount {
	var out []mount
	for _, item := range asList(v) {
		if m := asMap(item); m != nil {
			out = append(out, mount{source: asString(m["source"]), target: asString(m["target"]), readOnly: m["read_only"] == true})
			continue
		}
		parts := splitVolume(asString(item))
		switch len(parts) {
		case 1:
			out = append(out, mount{target: parts[0]})
		default:
			mt := mount{source: parts[0], target: parts[1]}
			if len(parts) > 2 {
				mt.readOnly = slices.Contains(strings.Split(parts[2], ","), "ro")
			}
			out = append(out, mt)
		}
	}
	return out
}

func envMap(v any) map[string]string {
	out := map[string]string{}
	if m := asMap(v); m != nil {
		for k, val := range m {
			out[k] = asString(val)
		}
		return out
	}
	for _, item := range asList(v) {
		k, val, _ := strings.Cut(asString(item), "=")
		out[k] = val
	}
	return out
}

func isNamedVolume(source string) bool {
	return source != "" && !strings.ContainsAny(source[:1], "./~$")
}

// checkCompose checks the compose file; vaultVersion is the version of the
// Vault test server (deploy/vault-dev), which the Vault image must match.
func checkCompose(doc map[string]any, vaultVersion string) []string {
	var p problems
	services := asMap(doc["services"])
	gw, vault, initVault := asMap(services["gateway"]), asMap(services["vault"]), asMap(services["vault-init"])
	if gw == nil || vault == nil || initVault == nil {
		p.add("compose needs the services gateway, vault and vault-init")
		return p
	}
	if gw["read_only"] != true {
		p.add("gateway: read_only is not true: the root file system must be read-only")
	}
	if !containsString(asList(gw["cap_drop"]), "ALL") {
		p.add("gateway: cap_drop does not drop ALL capabilities")
	}
	if !slices.ContainsFunc(asList(gw["security_opt"]), func(v any) bool { return strings.HasPrefix(asString(v), "no-new-privileges") }) {
		p.add("gateway: security_opt lacks no-new-privileges")
	}
	if gw["privileged"] == true {
		p.add("gateway: privileged")
	}
	if u := asString(gw["user"]); u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		p.add("gateway: runs as root (user %q)", u)
	}
	if d, err := time.ParseDuration(asString(gw["stop_grace_period"])); err != nil || d < 15*time.Second {
		p.add("gateway: stop_grace_period %v leaves no time to drain (10 s) and write the final checkpoint", gw["stop_grace_period"])
	}
	if file := asString(dig(gw, "build", "dockerfile")); file != "deploy/Dockerfile" || asString(dig(gw, "build", "context")) != ".." {
		p.add("gateway: build must use context .. and deploy/Dockerfile")
	}
	data := false
	targets := map[string]bool{}
	for _, mt := range composeMounts(gw["volumes"]) {
		targets[mt.target] = true
		if mt.target == dataDir {
			data = true
			switch {
			case !isNamedVolume(mt.source):
				p.add("gateway: %s is %q, not a named volume", dataDir, mt.source)
			case !declared(doc, mt.source):
				p.add("gateway: volume %q is not declared", mt.source)
			}
			if mt.readOnly {
				p.add("gateway: the data volume is read-only: audit.db cannot be written")
			}
			continue
		}
		if !mt.readOnly {
			p.add("gateway: %s is mounted writable: only the data volume may be", mt.target)
		}
	}
	if !data {
		p.add("gateway: no volume at %s", dataDir)
	}
	for _, want := range []string{configArg, "/etc/consentgate/vendors", "/etc/consentgate/policies"} {
		if !targets[want] {
			p.add("gateway: nothing mounted at %s", want)
		}
	}
	for name, s := range services {
		for _, port := range asList(asMap(s)["ports"]) {
			if pm := asMap(port); pm != nil {
				if asString(pm["host_ip"]) != "127.0.0.1" {
					p.add("%s: port %v is published on every interface", name, pm["target"])
				}
			} else if !strings.HasPrefix(asString(port), "127.0.0.1:") {
				p.add("%s: port %v is published on every interface", name, port)
			}
		}
		for k, v := range envMap(asMap(s)["environment"]) {
			if secretName.MatchString(k) && !strings.HasPrefix(v, "${") {
				p.add("%s: environment %s holds a literal value: use a ${VAR} placeholder", name, k)
			}
		}
	}
	if img, want := asString(vault["image"]), "hashicorp/vault:"+vaultVersion; img != want {
		p.add("vault: image %q, want %s (the version the tests run, deploy/vault-dev/go.mod)", img, want)
	}
	p = append(p, checkVaultInit(doc, gw, vault, initVault)...)
	if !slices.ContainsFunc(asList(vault["command"]), func(v any) bool { return asString(v) == "-dev" }) {
		p.add("vault: not started with -dev")
	}
	if tok := envMap(vault["environment"])["VAULT_DEV_ROOT_TOKEN_ID"]; !strings.HasPrefix(tok, "${") {
		p.add("vault: VAULT_DEV_ROOT_TOKEN_ID %q is not an environment placeholder", tok)
	}
	for name, s := range asMap(doc["secrets"]) {
		for k := range asMap(s) {
			if k != "environment" && k != "file" && k != "external" && k != "name" {
				p.add("secret %s: %s: secrets come from the environment or a file, never from this file", name, k)
			}
		}
	}
	return p
}

// checkVaultInit checks the seeding step: it runs compose/seed-vault.sh in the
// Vault image once Vault is healthy, the gateway waits for it to succeed, and
// the AppRole files reach the gateway read-only through a named volume. The
// gateway never gets the root token.
func checkVaultInit(doc, gw, vault, initVault map[string]any) []string {
	var p problems
	if asString(initVault["image"]) != asString(vault["image"]) {
		p.add("vault-init: image %v is not the vault service's %v", initVault["image"], vault["image"])
	}
	if asString(dig(initVault, "depends_on", "vault", "condition")) != "service_healthy" {
		p.add("vault-init does not wait for vault to be healthy")
	}
	if asString(dig(gw, "depends_on", "vault-init", "condition")) != "service_completed_successfully" {
		p.add("gateway: does not wait for vault-init to complete successfully: it would start before its secrets exist")
	}
	if !containsString(asList(initVault["cap_drop"]), "ALL") {
		p.add("vault-init: cap_drop does not drop ALL capabilities")
	}
	entry := asList(initVault["entrypoint"])
	script := ""
	if len(entry) > 0 {
		script = asString(entry[len(entry)-1])
	}
	seeded, approle := false, ""
	for _, mt := range composeMounts(initVault["volumes"]) {
		switch {
		case mt.target == script && mt.source == "./compose/seed-vault.sh":
			seeded = true
		case mt.target == "/approle" && !mt.readOnly:
			approle = mt.source
		}
	}
	if !seeded {
		p.add("vault-init: entrypoint %v does not run ./compose/seed-vault.sh", entry)
	}
	switch {
	case approle == "":
		p.add("vault-init: no writable volume at /approle for the AppRole files")
	case !isNamedVolume(approle) || !declared(doc, approle):
		p.add("vault-init: /approle is %q, not a declared named volume", approle)
	default:
		shared := false
		for _, mt := range composeMounts(gw["volumes"]) {
			if mt.source == approle {
				shared = true
			}
		}
		if !shared {
			p.add("gateway: does not mount the AppRole volume %s", approle)
		}
	}
	if strings.Contains(toYAML(gw), "VAULT_DEV_ROOT_TOKEN_ID") {
		p.add("gateway: gets the Vault root token")
	}
	for _, s := range asList(gw["secrets"]) {
		name := asString(s)
		if m := asMap(s); m != nil {
			name = asString(m["source"])
		}
		if asString(dig(doc, "secrets", name, "environment")) == "VAULT_DEV_ROOT_TOKEN_ID" {
			p.add("gateway: secret %s is the Vault root token", name)
		}
	}
	return p
}

func declared(doc map[string]any, volume string) bool {
	_, ok := asMap(doc["volumes"])[volume]
	return ok
}

// vaultVersion is the Vault version deploy/vault-dev builds ("1.21.0").
func vaultVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^require github\.com/hashicorp/vault v(\S+)$`).FindStringSubmatch(read(t, "vault-dev/go.mod"))
	if m == nil {
		t.Fatal("deploy/vault-dev/go.mod does not require github.com/hashicorp/vault")
	}
	return m[1]
}

func TestCompose(t *testing.T) {
	version := vaultVersion(t)
	expectProblems(t, checkCompose(loadYAML(t, "compose.yaml"), version), "")

	cases := []struct {
		name   string
		mutate func(doc map[string]any)
		want   string
	}{
		{"writable root", func(d map[string]any) { asMap(dig(d, "services", "gateway"))["read_only"] = false }, "read_only"},
		{"capabilities kept", func(d map[string]any) { delete(asMap(dig(d, "services", "gateway")), "cap_drop") }, "cap_drop"},
		{"writable config", func(d map[string]any) {
			v := asList(dig(d, "services", "gateway", "volumes"))
			v[1] = strings.TrimSuffix(asString(v[1]), ":ro")
		}, "mounted writable"},
		{"data on a bind mount", func(d map[string]any) {
			asList(dig(d, "services", "gateway", "volumes"))[0] = "./data:" + dataDir
		}, "not a named volume"},
		{"literal root token", func(d map[string]any) {
			asMap(dig(d, "services", "vault", "environment"))["VAULT_DEV_ROOT_TOKEN_ID"] = "root"
		}, "placeholder"},
		{"public port", func(d map[string]any) {
			asList(dig(d, "services", "gateway", "ports"))[0] = "8443:8443"
		}, "every interface"},
		{"short stop", func(d map[string]any) { asMap(dig(d, "services", "gateway"))["stop_grace_period"] = "5s" }, "stop_grace_period"},
		{"other vault", func(d map[string]any) { asMap(dig(d, "services", "vault"))["image"] = "hashicorp/vault:latest" }, "deploy/vault-dev/go.mod"},
		{"no seeding", func(d map[string]any) { delete(asMap(d["services"]), "vault-init") }, "vault-init"},
		{"gateway before seeding", func(d map[string]any) {
			asMap(dig(d, "services", "gateway"))["depends_on"] = map[string]any{"vault": map[string]any{"condition": "service_healthy"}}
		}, "before its secrets exist"},
		{"seeding before Vault", func(d map[string]any) { delete(asMap(dig(d, "services", "vault-init")), "depends_on") }, "healthy"},
		{"other seeding image", func(d map[string]any) { asMap(dig(d, "services", "vault-init"))["image"] = "alpine:3" }, "vault-init: image"},
		{"other script", func(d map[string]any) {
			asMap(dig(d, "services", "vault-init"))["entrypoint"] = []any{"/bin/sh", "-c", "true"}
		}, "seed-vault.sh"},
		{"AppRole files not shared", func(d map[string]any) {
			gw := asMap(dig(d, "services", "gateway"))
			gw["volumes"] = slices.DeleteFunc(asList(gw["volumes"]), func(v any) bool { return strings.HasPrefix(asString(v), "vault-approle:") })
		}, "AppRole volume"},
		{"root token to the gateway", func(d map[string]any) {
			asMap(dig(d, "services", "gateway"))["secrets"] = []any{"root"}
			d["secrets"] = map[string]any{"root": map[string]any{"environment": "VAULT_DEV_ROOT_TOKEN_ID"}}
		}, "root token"},
		{"root token in the gateway's environment", func(d map[string]any) {
			asMap(dig(d, "services", "gateway"))["environment"] = map[string]any{"VAULT_TOKEN": "${VAULT_DEV_ROOT_TOKEN_ID}"}
		}, "root token"},
		{"init keeps capabilities", func(d map[string]any) { delete(asMap(dig(d, "services", "vault-init")), "cap_drop") }, "vault-init: cap_drop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := loadYAML(t, "compose.yaml")
			c.mutate(doc)
			expectProblems(t, checkCompose(doc, version), c.want)
		})
	}
}

func TestComposeVolumeSyntax(t *testing.T) {
	got := composeMounts([]any{"${PKI:-../x/pki}:/etc/tls:ro", "data:/var/lib/x", map[string]any{"source": "a", "target": "/b", "read_only": true}})
	want := []mount{{"${PKI:-../x/pki}", "/etc/tls", true}, {"data", "/var/lib/x", false}, {"a", "/b", true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if s := withDefaults("${PKI:-../x/pki}"); s != "../x/pki" {
		t.Errorf("withDefaults = %q", s)
	}
}

// under reports whether p is one of roots or inside one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// configFiles are the files and folders a configuration makes the gateway read.
func configFiles(cfg *configs.Config) map[string]string {
	files := map[string]string{
		"tls.cert_file":                cfg.TLS.CertFile,
		"tls.key_file":                 cfg.TLS.KeyFile,
		"tls.client_ca_file":           cfg.TLS.ClientCAFile,
		"tls.forward_ca_cert_file":     cfg.TLS.ForwardCACertFile,
		"tls.forward_ca_key_file":      cfg.TLS.ForwardCAKeyFile,
		"secrets.vault.ca_file":        cfg.Secrets.Vault.CAFile,
		"secrets.vault.token_file":     cfg.Secrets.Vault.TokenFile,
		"secrets.vault.role_id_file":   cfg.Secrets.Vault.RoleIDFile,
		"secrets.vault.secret_id_file": cfg.Secrets.Vault.SecretIDFile,
		"policy.dir":                   cfg.Policy.Dir,
		"policy.bundle_key_file":       cfg.Policy.BundleKeyFile,
	}
	for k, v := range files {
		if v == "" {
			delete(files, k)
		} else {
			files[k] = cfg.ResolvePath(v)
		}
	}
	return files
}

// The gateway's configuration in compose loads with the real loader when the
// compose mounts are reproduced, and everything it reads is mounted.
func TestComposeGatewayConfig(t *testing.T) {
	doc := loadYAML(t, "compose.yaml")
	gw := asMap(dig(doc, "services", "gateway"))
	etc := filepath.Join(t.TempDir(), "etc", "consentgate")
	var targets []string
	for _, mt := range composeMounts(gw["volumes"]) {
		targets = append(targets, mt.target)
		rel, ok := strings.CutPrefix(mt.target, "/etc/consentgate/")
		if !ok {
			continue
		}
		src, err := filepath.Abs(withDefaults(mt.source))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(src); err != nil {
			if rel == "tls" {
				continue // the dev PKI, generated by `consentgate dev`
			}
			t.Fatalf("compose mounts %s at %s: %v", mt.source, mt.target, err)
		}
		link := filepath.Join(etc, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, link); err != nil {
			t.Fatal(err)
		}
	}
	var secretTargets []string
	for _, s := range asList(gw["secrets"]) {
		if m := asMap(s); m != nil {
			secretTargets = append(secretTargets, "/run/secrets/"+asString(m["target"]))
		} else {
			secretTargets = append(secretTargets, "/run/secrets/"+asString(s))
		}
	}
	cfg, err := configs.Load(filepath.Join(etc, "consentgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != dataDir {
		t.Errorf("data_dir %s is not the data volume %s", cfg.DataDir, dataDir)
	}
	if cfg.Secrets.Provider != "vault" {
		t.Errorf("secrets.provider %q, want vault (the compose Vault dev server)", cfg.Secrets.Provider)
	}
	if u, err := url.Parse(cfg.Secrets.Vault.Address); err != nil || asMap(doc["services"])[u.Hostname()] == nil {
		t.Errorf("secrets.vault.address %s does not name a compose service", cfg.Secrets.Vault.Address)
	}
	if tf := cfg.Secrets.Vault.TokenFile; tf != "" && !slices.Contains(secretTargets, tf) {
		t.Errorf("secrets.vault.token_file %s is not a compose secret of the gateway (%v)", tf, secretTargets)
	}
	// The AppRole files are the ones compose/seed-vault.sh writes into the
	// volume vault-init shares with the gateway (at /approle there).
	v := cfg.Secrets.Vault
	if v.Auth != "approle" {
		t.Errorf("secrets.vault.auth %q, want approle (the AppRole vault-init makes)", v.Auth)
	}
	var approle string
	for _, mt := range composeMounts(dig(doc, "services", "vault-init", "volumes")) {
		if mt.target == "/approle" {
			approle = mt.source
		}
	}
	for _, mt := range composeMounts(gw["volumes"]) {
		if mt.source == approle {
			for field, want := range map[string]string{"role_id_file": path.Join(mt.target, "role-id"), "secret_id_file": path.Join(mt.target, "secret-id")} {
				got := map[string]string{"role_id_file": v.RoleIDFile, "secret_id_file": v.SecretIDFile}[field]
				if got != want {
					t.Errorf("secrets.vault.%s %s, want %s (what seed-vault.sh writes)", field, got, want)
				}
			}
			approle = ""
		}
	}
	if approle != "" {
		t.Errorf("the gateway does not mount vault-init's AppRole volume %q", approle)
	}
	for field, f := range configFiles(cfg) {
		if !under(f, append(targets, secretTargets...)) {
			t.Errorf("%s %s is not mounted into the gateway container", field, f)
		}
	}
}

// ---------------------------------------------------------------------------
// systemd unit

// unit maps section → key → assignments in file order.
type unit map[string]map[string][]string

func parseUnit(src string) (unit, error) {
	u := unit{}
	section := ""
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is not key=value in a section", i+1, l)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u, nil
}

// last is the value of the key's last assignment.
func (u unit) last(key string) (string, bool) {
	v := u["Service"][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// list is the effective value of a list setting: an empty assignment resets it.
func (u unit) list(key string) []string {
	var out []string
	for _, v := range u["Service"][key] {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func yes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}

// timespan parses a systemd time span ("30s", "1min 30s", "30").
func timespan(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "min", "m")
	return time.ParseDuration(s)
}

func checkUnit(u unit) []string {
	var p problems
	for _, c := range []struct{ key, want string }{
		{"ProtectSystem", "strict"},
		{"KillSignal", "SIGTERM"},
		{"StateDirectory", "consentgate"},
	} {
		if v, _ := u.last(c.key); v != c.want {
			p.add("%s=%s, want %s", c.key, v, c.want)
		}
	}
	for _, key := range []string{"ProtectHome", "PrivateTmp", "NoNewPrivileges", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute"} {
		if v, _ := u.last(key); !yes(v) {
			p.add("%s=%s, want yes", key, v)
		}
	}
	if _, set := u.last("CapabilityBoundingSet"); !set || len(u.list("CapabilityBoundingSet")) > 0 {
		p.add("CapabilityBoundingSet must be set empty (the gateway needs no capability); it is %q", u.list("CapabilityBoundingSet"))
	}
	if caps := u.list("AmbientCapabilities"); len(caps) > 0 {
		p.add("AmbientCapabilities=%s grants capabilities", caps)
	}
	families := u.list("RestrictAddressFamilies")
	slices.Sort(families)
	if !slices.Equal(families, []string{"AF_INET", "AF_INET6", "AF_UNIX"}) {
		p.add("RestrictAddressFamilies=%s, want AF_INET AF_INET6 AF_UNIX", families)
	}
	allow := false
	for _, v := range u["Service"]["SystemCallFilter"] {
		if !strings.HasPrefix(v, "~") && slices.Contains(strings.Fields(v), "@system-service") {
			allow = true
		}
	}
	if !allow {
		p.add("SystemCallFilter does not allow-list @system-service")
	}
	stop, _ := u.last("TimeoutStopSec")
	if d, err := timespan(stop); err != nil || d < 15*time.Second {
		p.add("TimeoutStopSec=%s: the gateway drains for up to 10 s, then writes the final audit checkpoint", stop)
	}
	if v, _ := u.last("ExecReload"); !strings.Contains(v, "HUP") || !strings.Contains(v, "$MAINPID") {
		p.add("ExecReload=%s does not send SIGHUP to $MAINPID", v)
	}
	dynamic, _ := u.last("DynamicUser")
	user, _ := u.last("User")
	if !yes(dynamic) && (user == "" || user == "root" || user == "0") {
		p.add("neither DynamicUser=yes nor a dedicated User= (User=%q)", user)
	}
	if v, _ := u.last("ExecStart"); !strings.Contains(v, " serve --config "+configArg) {
		p.add("ExecStart=%s does not run serve --config %s", v, configArg)
	}
	return p
}

func TestSystemdUnit(t *testing.T) {
	src := read(t, "systemd/consentgate.service")
	u, err := parseUnit(src)
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, checkUnit(u), "")

	cases := []struct{ name, old, new, want string }{
		{"full", "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"},
		{"home", "ProtectHome=yes", "ProtectHome=no", "ProtectHome"},
		{"nnp", "NoNewPrivileges=yes\n", "", "NoNewPrivileges"},
		{"capability", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "CapabilityBoundingSet"},
		{"no bounding set", "CapabilityBoundingSet=\n", "", "CapabilityBoundingSet"},
		{"netlink", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "RestrictAddressFamilies"},
		{"no filter", "SystemCallFilter=@system-service\n", "", "@system-service"},
		{"short stop", "TimeoutStopSec=30s", "TimeoutStopSec=5s", "TimeoutStopSec"},
		{"reload", "ExecReload=/bin/kill -s HUP $MAINPID", "ExecReload=/bin/true", "ExecReload"},
		{"root", "User=consentgate", "User=root", "User="},
		{"kill", "KillSignal=SIGTERM", "KillSignal=SIGKILL", "KillSignal"},
		{"state", "StateDirectory=consentgate", "ReadWritePaths=/var/lib/consentgate", "StateDirectory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Whole lines only: the comments mention some settings too.
			if !strings.Contains(src, "\n"+c.old) {
				t.Fatalf("unit no longer contains the line %q: update this case", c.old)
			}
			u, err := parseUnit(strings.Replace(src, "\n"+c.old, "\n"+c.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			expectProblems(t, checkUnit(u), c.want)
		})
	}
}

// The unit's state directory is the data_dir of the shipped production
// example, which ProtectSystem=strict leaves as the only writable path.
func TestSystemdUnitMatchesExampleConfig(t *testing.T) {
	u, err := parseUnit(read(t, "systemd/consentgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load("../configs/consentgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := u.last("StateDirectory")
	if cfg.DataDir != "/var/lib/"+state {
		t.Errorf("configs/consentgate.yaml data_dir %s is not the unit's StateDirectory /var/lib/%s", cfg.DataDir, state)
	}
	if home := strings.Fields(read(t, "systemd/consentgate.sysusers")); !slices.Contains(home, cfg.DataDir) {
		t.Errorf("consentgate.sysusers does not give the user the home %s", cfg.DataDir)
	}
}

// ---------------------------------------------------------------------------
// Helm chart

// toYAML is v as YAML, for searching a rendered object as text.
func toYAML(v any) string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// merge overlays src onto dst, recursing into maps (as helm --set does).
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

type object = map[string]any

type rendered struct {
	objects []object
	values  map[string]any
}

// helmBinary is the real helm that make chart-check builds into .cache/bin
// (or $CONSENTGATE_HELM_BIN).
func helmBinary(t *testing.T) string {
	t.Helper()
	tier.Needs(t, "helm, built by make chart-check")
	p := os.Getenv("CONSENTGATE_HELM_BIN")
	if p == "" {
		p = filepath.Join("..", ".cache", "bin", "helm")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		t.Fatalf("no helm binary (%v): build it with make chart-check or set CONSENTGATE_HELM_BIN", err)
	}
	return abs
}

// renderChart renders the chart with the real helm template, values.yaml
// overlaid by set, and decodes the output.
func renderChart(t *testing.T, set map[string]any) rendered {
	t.Helper()
	helm := helmBinary(t)
	values := loadYAML(t, filepath.Join(chartDir, "values.yaml"))
	merge(values, set)
	overlay, err := yaml.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir(): helm -f splits its argument at commas, which
	// subtest names hold.
	f, err := os.CreateTemp("", "chart-values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	file := f.Name()
	_, err = f.Write(overlay)
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, "template", "cg", chartDir, "--namespace", "egress", "-f", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	out := rendered{values: values}
	dec := yaml.NewDecoder(&stdout)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template's output is not YAML: %v", err)
		}
		if o != nil {
			out.objects = append(out.objects, o)
		}
	}
	return out
}

func (r rendered) kinds() map[string]int {
	n := map[string]int{}
	for _, o := range r.objects {
		n[asString(o["kind"])]++
	}
	return n
}

func (r rendered) find(kind string, match func(object) bool) object {
	for _, o := range r.objects {
		if asString(o["kind"]) == kind && (match == nil || match(o)) {
			return o
		}
	}
	return nil
}

func nameOf(o object) string { return asString(dig(o, "metadata", "name")) }

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containerByName(pod any, name string) map[string]any {
	for _, c := range asList(asMap(pod)["containers"]) {
		if asString(asMap(c)["name"]) == name {
			return asMap(c)
		}
	}
	return nil
}

// mountedPaths lists a container's mount paths.
func mountedPaths(c map[string]any) []string {
	var out []string
	for _, m := range asList(c["volumeMounts"]) {
		out = append(out, asString(asMap(m)["mountPath"]))
	}
	return out
}

// checkChart checks the rendered objects for the hardening and consistency the
// gateway needs.
func checkChart(r rendered) []string {
	var p problems
	for _, o := range r.objects {
		if asString(o["apiVersion"]) == "" || asString(o["kind"]) == "" || nameOf(o) == "" {
			p.add("an object lacks apiVersion, kind or metadata.name: %v", o)
		}
		if len(nameOf(o)) > 63 {
			p.add("%s %s: name longer than 63 characters", o["kind"], nameOf(o))
		}
	}
	sts := r.find("StatefulSet", nil)
	if sts == nil || r.kinds()["StatefulSet"] != 1 {
		p.add("want one StatefulSet, got %d", r.kinds()["StatefulSet"])
		return p
	}
	pod := asMap(dig(sts, "spec", "template", "spec"))
	podLabels := asMap(dig(sts, "spec", "template", "metadata", "labels"))
	if !subset(asMap(dig(sts, "spec", "selector", "matchLabels")), podLabels) {
		p.add("StatefulSet selector does not match its pod labels")
	}
	for _, k := range []string{"checksum/config", "checksum/policies"} {
		if asString(dig(sts, "spec", "template", "metadata", "annotations", k)) == "" {
			p.add("pod template lacks the %s annotation: a configuration change would not restart the pods", k)
		}
	}

	// Pod and container security.
	psc := asMap(pod["securityContext"])
	if psc["runAsNonRoot"] != true {
		p.add("pod securityContext.runAsNonRoot is not true")
	}
	if asString(dig(psc, "seccompProfile", "type")) != "RuntimeDefault" {
		p.add("pod seccompProfile is not RuntimeDefault")
	}
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if pod[k] == true {
			p.add("pod uses %s", k)
		}
	}
	for _, v := range asList(pod["volumes"]) {
		if asMap(v)["hostPath"] != nil {
			p.add("volume %v is a hostPath", asMap(v)["name"])
		}
		if mode := dig(v, "secret", "defaultMode"); mode != nil {
			if n, err := toInt(mode); err != nil || n&0o007 != 0 {
				p.add("secret volume %v: defaultMode %v is world-accessible", asMap(v)["name"], mode)
			}
		}
	}
	containers := append(slices.Clone(asList(pod["initContainers"])), asList(pod["containers"])...)
	for _, c := range containers {
		c := asMap(c)
		name := asString(c["name"])
		sc := asMap(c["securityContext"])
		if sc["allowPrivilegeEscalation"] != false {
			p.add("container %s: allowPrivilegeEscalation is not false", name)
		}
		if sc["readOnlyRootFilesystem"] != true {
			p.add("container %s: readOnlyRootFilesystem is not true", name)
		}
		if sc["runAsNonRoot"] != true && psc["runAsNonRoot"] != true {
			p.add("container %s: runAsNonRoot is not true", name)
		}
		if uid, ok := sc["runAsUser"]; ok {
			if n, _ := toInt(uid); n == 0 {
				p.add("container %s: runAsUser 0", name)
			}
		}
		if sc["privileged"] == true {
			p.add("container %s: privileged", name)
		}
		if !containsString(asList(dig(sc, "capabilities", "drop")), "ALL") {
			p.add("container %s: capabilities do not drop ALL", name)
		}
		if len(asList(dig(sc, "capabilities", "add"))) > 0 {
			p.add("container %s: adds capabilities", name)
		}
		if t := asString(dig(sc, "seccompProfile", "type")); t != "RuntimeDefault" && (t != "" || asString(dig(psc, "seccompProfile", "type")) != "RuntimeDefault") {
			p.add("container %s: seccompProfile %q", name, t)
		}
		for _, k := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory"} {
				if asString(dig(c, "resources", k, res)) == "" {
					p.add("container %s: no resources.%s.%s", name, k, res)
				}
			}
		}
	}

	main := containerByName(pod, "consentgate")
	if main == nil {
		p.add("no container named consentgate")
		return p
	}
	if podNode(main) != podName {
		p.add("the gateway container does not get %s from metadata.name (got %q): the replicas would share one node and audit chain", configs.NodeEnv, podNode(main))
	}
	ports := map[string]int{}
	for _, cp := range asList(main["ports"]) {
		n, _ := toInt(asMap(cp)["containerPort"])
		ports[asString(asMap(cp)["name"])] = n
	}
	if !reflect.DeepEqual(ports, wantPorts) {
		p.add("container ports %v, want %v", ports, wantPorts)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		pr := asMap(main[probe])
		switch {
		case pr == nil:
			p.add("no %s", probe)
		case pr["httpGet"] != nil:
			p.add("%s uses httpGet: it cannot present the client certificate the admin listener requires", probe)
		case pr["tcpSocket"] != nil:
			port := dig(pr, "tcpSocket", "port")
			n, err := toInt(port)
			if err != nil {
				n = ports[asString(port)]
			}
			if n != wantPorts["admin"] {
				p.add("%s probes port %v, not the admin port %d", probe, port, wantPorts["admin"])
			}
		case pr["exec"] == nil:
			p.add("%s has no tcpSocket or exec handler", probe)
		}
	}

	// Storage: the data PVC is the only writable mount.
	claims := map[string]bool{}
	for _, vct := range asList(dig(sts, "spec", "volumeClaimTemplates")) {
		claims[nameOf(asMap(vct))] = true
		if asString(dig(vct, "spec", "resources", "requests", "storage")) == "" {
			p.add("volumeClaimTemplate %s requests no storage", nameOf(asMap(vct)))
		}
	}
	data := false
	for _, m := range asList(main["volumeMounts"]) {
		m := asMap(m)
		if asString(m["mountPath"]) == dataDir {
			data = true
			if !claims[asString(m["name"])] {
				p.add("%s is volume %v, not a per-replica volumeClaimTemplate", dataDir, m["name"])
			}
			if m["readOnly"] == true {
				p.add("%s is read-only", dataDir)
			}
		} else if m["readOnly"] != true {
			p.add("%s is mounted writable in the gateway container: only %s may be", m["mountPath"], dataDir)
		}
	}
	if !data {
		p.add("nothing mounted at %s", dataDir)
	}

	// Services.
	headless := r.find("Service", func(o object) bool { return nameOf(o) == asString(dig(sts, "spec", "serviceName")) })
	if headless == nil || asString(dig(headless, "spec", "clusterIP")) != "None" {
		p.add("the StatefulSet's serviceName %v is not a headless Service", dig(sts, "spec", "serviceName"))
	}
	services := 0
	for _, svc := range r.objects {
		if asString(svc["kind"]) != "Service" {
			continue
		}
		services++
		if !subset(asMap(dig(svc, "spec", "selector")), podLabels) {
			p.add("Service %s does not select the gateway pods", nameOf(svc))
		}
		got := map[string]int{}
		for _, sp := range asList(dig(svc, "spec", "ports")) {
			n, _ := toInt(asMap(sp)["port"])
			got[asString(asMap(sp)["name"])] = n
			target := asMap(sp)["targetPort"]
			if tn, err := toInt(target); ports[asString(target)] == 0 && (err != nil || !slices.Contains(slices.Collect(maps.Values(ports)), tn)) {
				p.add("Service %s targets port %v, which the container does not have", nameOf(svc), target)
			}
		}
		if !reflect.DeepEqual(got, wantPorts) {
			p.add("Service %s ports %v, want %v", nameOf(svc), got, wantPorts)
		}
	}
	if services < 2 {
		p.add("want a Service and a headless Service, got %d Services", services)
	}

	if sa := r.find("ServiceAccount", nil); sa != nil && nameOf(sa) != asString(pod["serviceAccountName"]) {
		p.add("pod runs as %v, not the chart's ServiceAccount %s", pod["serviceAccountName"], nameOf(sa))
	}
	if pdb := r.find("PodDisruptionBudget", nil); pdb != nil {
		if !subset(asMap(dig(pdb, "spec", "selector", "matchLabels")), podLabels) {
			p.add("PodDisruptionBudget does not select the gateway pods")
		}
		if dig(pdb, "spec", "maxUnavailable") == nil && dig(pdb, "spec", "minAvailable") == nil {
			p.add("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
		}
	}
	if np := r.find("NetworkPolicy", nil); np != nil {
		p = append(p, checkNetworkPolicy(np, podLabels)...)
	}
	return p
}

func checkNetworkPolicy(np object, podLabels map[string]any) []string {
	var p problems
	if !subset(asMap(dig(np, "spec", "podSelector", "matchLabels")), podLabels) {
		p.add("NetworkPolicy does not select the gateway pods")
	}
	types := asList(dig(np, "spec", "policyTypes"))
	if !containsString(types, "Ingress") || !containsString(types, "Egress") {
		p.add("NetworkPolicy policyTypes %v: want Ingress and Egress", types)
	}
	in := map[int]bool{}
	for _, rule := range asList(dig(np, "spec", "ingress")) {
		for _, port := range asList(asMap(rule)["ports"]) {
			n, _ := toInt(asMap(port)["port"])
			in[n] = true
		}
	}
	for name, port := range wantPorts {
		if !in[port] {
			p.add("NetworkPolicy does not admit the %s port %d", name, port)
		}
	}
	dns := false
	for i, rule := range asList(dig(np, "spec", "egress")) {
		// A rule without "to" (or without ports) allows every destination.
		if len(asList(asMap(rule)["to"])) == 0 {
			p.add("egress rule %d has no destination: it would allow everything", i)
		}
		if len(asList(asMap(rule)["ports"])) == 0 {
			p.add("egress rule %d has no ports: it would allow every port", i)
		}
		for _, port := range asList(asMap(rule)["ports"]) {
			if n, _ := toInt(asMap(port)["port"]); n == 53 {
				dns = true
			}
		}
	}
	if !dns {
		p.add("NetworkPolicy allows no DNS egress")
	}
	return p
}

// podNode is the node the gateway container gets from its environment in pod
// podName: CONSENTGATE_NODE, from the pod name or a literal; "" if unset.
func podNode(main map[string]any) string {
	for _, e := range asList(main["env"]) {
		if asString(asMap(e)["name"]) != configs.NodeEnv {
			continue
		}
		if asString(dig(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name" {
			return podName
		}
		return asString(asMap(e)["value"])
	}
	return ""
}

// chartConfig simulates the render-config init container (the shared file, the
// vendor profiles beside it) and loads the result with the real loader and the
// node the gateway container's environment gives it. The shared file alone must
// not load: without CONSENTGATE_NODE, replicas would share a node and a chain.
func chartConfig(t *testing.T, r rendered) *configs.Config {
	t.Helper()
	var cm, vendors object
	for _, o := range r.objects {
		if asString(o["kind"]) != "ConfigMap" {
			continue
		}
		switch {
		case asString(dig(o, "data", "consentgate.yaml")) != "":
			cm = o
		case strings.HasSuffix(nameOf(o), "-vendors"):
			vendors = o
		}
	}
	if cm == nil || vendors == nil {
		t.Fatal("no ConfigMap with consentgate.yaml, or none with the vendor profiles")
	}
	text := asString(dig(cm, "data", "consentgate.yaml"))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "vendors"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range asMap(dig(vendors, "data")) {
		if err := os.WriteFile(filepath.Join(dir, "vendors", name), []byte(asString(body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "consentgate.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := configs.Load(file); err == nil || !strings.Contains(err.Error(), "node: is required") {
		t.Errorf("the shared consentgate.yaml loads without CONSENTGATE_NODE (err %v): every replica would write under its node", err)
	}
	main := containerByName(dig(r.find("StatefulSet", nil), "spec", "template", "spec"), "consentgate")
	cfg, err := configs.LoadWithNode(file, podNode(main))
	if err != nil {
		t.Fatalf("the chart's consentgate.yaml does not load: %v\n%s", err, text)
	}
	return cfg
}

// checkChartConfig checks the configuration against the pod that runs it.
func checkChartConfig(r rendered, cfg *configs.Config) []string {
	var p problems
	sts := r.find("StatefulSet", nil)
	pod := dig(sts, "spec", "template", "spec")
	main := containerByName(pod, "consentgate")
	var init map[string]any
	for _, c := range asList(asMap(pod)["initContainers"]) {
		if asString(asMap(c)["name"]) == "render-config" {
			init = asMap(c)
		}
	}
	if init == nil {
		p.add("no render-config init container")
		return p
	}
	if cfg.Node != podName {
		p.add("node %q is not the pod name", cfg.Node)
	}
	script := strings.Join(func() []string {
		var s []string
		for _, a := range asList(init["command"]) {
			s = append(s, asString(a))
		}
		return s
	}(), " ")
	args := asList(main["args"])
	i := slices.IndexFunc(args, func(a any) bool { return asString(a) == "--config" })
	if i < 0 || i+1 >= len(args) {
		p.add("the gateway is not started with --config")
		return p
	}
	configPath := asString(args[i+1])
	if !strings.Contains(script, "> "+configPath) {
		p.add("render-config does not write %s", configPath)
	}
	if cfg.Policy.Dir != "" && !strings.Contains(script, "mkdir -p "+cfg.Policy.Dir) {
		p.add("render-config does not create policy.dir %s", cfg.Policy.Dir)
	}
	if !strings.Contains(script, "mkdir -p "+path.Join(path.Dir(configPath), "vendors")) {
		p.add("render-config does not copy the vendor profiles beside %s", configPath)
	}
	if cfg.DataDir != dataDir {
		p.add("data_dir %s is not the PVC mount %s", cfg.DataDir, dataDir)
	}
	v := cfg.Secrets.Vault
	if cfg.Secrets.Provider != "vault" || v.Auth != "kubernetes" || v.Role != asString(dig(r.values, "vault", "role")) {
		p.add("secrets: provider %q auth %q role %q, want vault, kubernetes, %v", cfg.Secrets.Provider, v.Auth, v.Role, dig(r.values, "vault", "role"))
	}
	if v.Auth == "kubernetes" && asMap(pod)["automountServiceAccountToken"] != true {
		p.add("Vault Kubernetes auth needs the service account token, but it is not mounted")
	}
	mounts := mountedPaths(main)
	for field, f := range configFiles(cfg) {
		if !under(f, mounts) {
			p.add("%s %s is not mounted into the gateway container", field, f)
		}
	}
	if !under(configPath, mounts) {
		p.add("--config %s is not mounted", configPath)
	}
	return p
}

// chartCases are the values the chart is checked with: the defaults and each
// variant in the chart's ci/ folder, which `make chart-check` also renders with
// the real helm and validates with kubeconform.
var chartCases = []struct {
	name   string
	values string // a values file in the chart (ci/…), or "" for the defaults
	kinds  map[string]int
	check  func(t *testing.T, r rendered, cfg *configs.Config)
}{
	{
		name:  "defaults",
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 3, "Service": 2, "StatefulSet": 1, "PodDisruptionBudget": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, r rendered, cfg *configs.Config) {
			if cfg.Policy.Dir == "" {
				t.Error("no policy.dir with the shipped policies")
			}
			if got := len(cfg.Vendors); got != len(asList(dig(r.values, "config", "vendors"))) {
				t.Errorf("%d vendor profiles loaded", got)
			}
			np := r.find("NetworkPolicy", nil)
			if strings.Contains(toYAML(dig(np, "spec", "egress")), "ipBlock") {
				t.Error("the default NetworkPolicy lets the gateway reach addresses nobody listed")
			}
		},
	},
	{
		name:   "signed bundle, forward CA, Vault CA, vendor CIDRs, three replicas",
		values: "ci/bundle-vault-ca-values.yaml",
		kinds:  map[string]int{"ServiceAccount": 1, "ConfigMap": 2, "Service": 2, "StatefulSet": 1, "PodDisruptionBudget": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, r rendered, cfg *configs.Config) {
			if cfg.Policy.Bundle != "https://bundles.example/consentgate.tar.gz" || cfg.Policy.BundleKeyFile == "" || cfg.Policy.Dir != "" {
				t.Errorf("policy %+v", cfg.Policy)
			}
			if cfg.TLS.ForwardCACertFile == "" || cfg.Secrets.Vault.CAFile == "" {
				t.Errorf("forward CA %q, Vault CA %q", cfg.TLS.ForwardCACertFile, cfg.Secrets.Vault.CAFile)
			}
			if cfg.Keys.TokenSealPrevious != "consentgate/keys-2026#token_seal" || cfg.Keys.TokenSeal == "" {
				t.Errorf("token seal keys %q, previous %q", cfg.Keys.TokenSeal, cfg.Keys.TokenSealPrevious)
			}
			if v := cfg.Secrets.Vault; v.Address != "https://vault.example:8200" || v.Role != "consentgate-egress" {
				t.Errorf("Vault address %s role %s: the values file is not applied", v.Address, v.Role)
			}
			if n, _ := toInt(dig(r.find("StatefulSet", nil), "spec", "replicas")); n != 3 {
				t.Errorf("replicas %d", n)
			}
			egress := toYAML(dig(r.find("NetworkPolicy", nil), "spec", "egress"))
			for _, cidr := range []string{"203.0.113.0/24", "198.51.100.7/32"} {
				if !strings.Contains(egress, cidr) {
					t.Errorf("egress lacks %s:\n%s", cidr, egress)
				}
			}
			if dig(r.find("NetworkPolicy", nil), "spec", "ingress", 0, "from") == nil {
				t.Error("ingressFrom is not rendered")
			}
		},
	},
	{
		name:   "external service account, no NetworkPolicy, no PDB, three replicas",
		values: "ci/external-account-values.yaml",
		kinds:  map[string]int{"ConfigMap": 3, "Service": 2, "StatefulSet": 1},
		check: func(t *testing.T, r rendered, cfg *configs.Config) {
			sts := r.find("StatefulSet", nil)
			if n, _ := toInt(dig(sts, "spec", "replicas")); n != 3 {
				t.Errorf("replicas %v", dig(sts, "spec", "replicas"))
			}
			if sa := dig(sts, "spec", "template", "spec", "serviceAccountName"); sa != "consentgate-vault" {
				t.Errorf("serviceAccountName %v", sa)
			}
			if nameOf(sts) != "egress" {
				t.Errorf("fullnameOverride ignored: %s", nameOf(sts))
			}
		},
	},
}

func TestHelmChart(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range chartCases {
		covered[c.values] = true
		t.Run(c.name, func(t *testing.T) {
			var set map[string]any
			if c.values != "" {
				set = loadYAML(t, filepath.Join(chartDir, c.values))
			}
			r := renderChart(t, set)
			if got := r.kinds(); !reflect.DeepEqual(got, c.kinds) {
				t.Errorf("kinds %v, want %v", got, c.kinds)
			}
			expectProblems(t, checkChart(r), "")
			cfg := chartConfig(t, r)
			expectProblems(t, checkChartConfig(r, cfg), "")
			c.check(t, r, cfg)
		})
	}
	variants, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(variants) == 0 {
		t.Fatalf("no values variants in %s/ci (%v)", chartDir, err)
	}
	for _, v := range variants {
		rel, _ := filepath.Rel(chartDir, v)
		if !covered[filepath.ToSlash(rel)] {
			t.Errorf("%s is rendered by make chart-check but has no case here", v)
		}
	}
}

// Each broken variant of the rendered chart must be caught.
func TestHelmChartChecksFail(t *testing.T) {
	pod := func(r rendered) map[string]any {
		return asMap(dig(r.find("StatefulSet", nil), "spec", "template", "spec"))
	}
	main := func(r rendered) map[string]any { return containerByName(pod(r), "consentgate") }
	cases := []struct {
		name   string
		mutate func(r rendered)
		want   string
	}{
		{"writable root", func(r rendered) { asMap(main(r)["securityContext"])["readOnlyRootFilesystem"] = false }, "readOnlyRootFilesystem"},
		{"escalation", func(r rendered) {
			delete(asMap(dig(pod(r), "initContainers", 0, "securityContext")), "allowPrivilegeEscalation")
		}, "allowPrivilegeEscalation"},
		{"capabilities", func(r rendered) { delete(asMap(main(r)["securityContext"]), "capabilities") }, "drop ALL"},
		{"seccomp", func(r rendered) { delete(asMap(pod(r)["securityContext"]), "seccompProfile") }, "seccompProfile"},
		{"httpGet probe", func(r rendered) {
			main(r)["livenessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": "admin", "scheme": "HTTPS"}}
		}, "client certificate"},
		{"probe on gateway port", func(r rendered) {
			asMap(dig(main(r), "readinessProbe", "tcpSocket"))["port"] = "gateway"
		}, "not the admin port"},
		{"writable config", func(r rendered) { asMap(dig(main(r), "volumeMounts", 1))["readOnly"] = false }, "mounted writable"},
		{"emptyDir data", func(r rendered) { asMap(dig(main(r), "volumeMounts", 0))["name"] = "conf" }, "volumeClaimTemplate"},
		{"no limits", func(r rendered) { delete(asMap(main(r)["resources"]), "limits") }, "resources.limits"},
		{"open egress", func(r rendered) {
			spec := asMap(dig(r.find("NetworkPolicy", nil), "spec"))
			spec["egress"] = append(asList(spec["egress"]), map[string]any{"ports": []any{map[string]any{"port": 443}}})
		}, "allow everything"},
		{"admin port closed", func(r rendered) {
			rule := asMap(dig(r.find("NetworkPolicy", nil), "spec", "ingress", 0))
			rule["ports"] = asList(rule["ports"])[:2]
		}, "admin port"},
		{"world-readable keys", func(r rendered) {
			for _, v := range asList(pod(r)["volumes"]) {
				if s := asMap(asMap(v)["secret"]); s != nil {
					s["defaultMode"] = 0o444
				}
			}
		}, "world-accessible"},
		{"hostPath", func(r rendered) {
			pod(r)["volumes"] = append(asList(pod(r)["volumes"]), map[string]any{"name": "h", "hostPath": map[string]any{"path": "/"}})
		}, "hostPath"},
		{"service port", func(r rendered) {
			asMap(dig(r.find("Service", nil), "spec", "ports", 0))["port"] = 443
		}, "ports"},
		{"one node for all replicas", func(r rendered) {
			main(r)["env"] = []any{map[string]any{"name": configs.NodeEnv, "value": "consentgate"}}
		}, "share one node"},
		{"no node", func(r rendered) { delete(main(r), "env") }, configs.NodeEnv},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := renderChart(t, nil)
			c.mutate(r)
			expectProblems(t, checkChart(r), c.want)
		})
	}
}

// valueRef matches .Values references in templates ($.Values too).
var valueRef = regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)

// Every .Values.x.y a template names exists in values.yaml, also in branches
// the rendering above does not take.
func TestHelmValuesReferenced(t *testing.T) {
	values := loadYAML(t, filepath.Join(chartDir, "values.yaml"))
	entries, err := os.ReadDir(filepath.Join(chartDir, "templates"))
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, e := range entries {
		src := read(t, filepath.Join(chartDir, "templates", e.Name()))
		for _, m := range valueRef.FindAllStringSubmatch(src, -1) {
			refs++
			var cur any = values
			for _, k := range strings.Split(strings.TrimPrefix(m[1], "."), ".") {
				mm := asMap(cur)
				v, ok := mm[k]
				if !ok {
					t.Errorf("templates/%s: %s is not in values.yaml", e.Name(), m[0])
					break
				}
				cur = v
			}
		}
	}
	if refs < 20 {
		t.Errorf("only %d .Values references found: is the pattern still right?", refs)
	}
}

func TestHelmChartMetadata(t *testing.T) {
	meta := loadYAML(t, filepath.Join(chartDir, "Chart.yaml"))
	if meta["apiVersion"] != "v2" || meta["name"] != "consentgate" || meta["type"] != "application" {
		t.Errorf("Chart.yaml: apiVersion %v name %v type %v", meta["apiVersion"], meta["name"], meta["type"])
	}
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	for _, k := range []string{"version", "appVersion"} {
		if !semver.MatchString(asString(meta[k])) {
			t.Errorf("Chart.yaml %s %q is not a semantic version", k, meta[k])
		}
	}
	values := loadYAML(t, filepath.Join(chartDir, "values.yaml"))
	for _, id := range asList(dig(values, "config", "vendors")) {
		if _, err := os.Stat(filepath.Join(chartDir, "files", "vendors", asString(id)+".yaml")); err != nil {
			t.Errorf("config.vendors names %v, which the chart does not ship: %v", id, err)
		}
	}
}

// The chart's vendor profiles and policies are links to configs/, not copies
// (Helm reads through them), and the ConfigMaps helm renders hold exactly the
// shipped files, byte for byte, the policies without their tests.
func TestHelmFilesAreTheShippedOnes(t *testing.T) {
	for _, l := range []struct{ chart, configs string }{
		{"files/policies", "../configs/policies"},
		{"files/vendors", "../configs/vendors"},
	} {
		link := filepath.Join(chartDir, l.chart)
		target, err := filepath.EvalSymlinks(link)
		want, _ := filepath.Abs(l.configs)
		if info, lerr := os.Lstat(link); lerr != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a link to %s (%v)", link, l.configs, lerr)
		} else if abs, _ := filepath.Abs(target); err != nil || abs != want {
			t.Errorf("%s points to %s, not %s (%v)", link, target, want, err)
		}
	}
	r := renderChart(t, nil)
	for _, c := range []struct{ configMap, dir string }{{"cg-consentgate-policies", "../configs/policies"}, {"cg-consentgate-vendors", "../configs/vendors"}} {
		cm := r.find("ConfigMap", func(o object) bool { return nameOf(o) == c.configMap })
		data := asMap(cm["data"])
		entries, err := os.ReadDir(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		shipped := 0
		for _, e := range entries {
			if e.IsDir() || strings.HasSuffix(e.Name(), "_test.rego") {
				if _, ok := data[e.Name()]; ok {
					t.Errorf("%s carries %s", c.configMap, e.Name())
				}
				continue
			}
			shipped++
			if got := asString(data[e.Name()]); got != read(t, filepath.Join(c.dir, e.Name())) {
				t.Errorf("%s: %s is not the shipped file", c.configMap, e.Name())
			}
		}
		if len(data) != shipped {
			t.Errorf("%s has %d files, configs has %d to ship", c.configMap, len(data), shipped)
		}
	}
}
