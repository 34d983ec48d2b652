package minimise

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var minimizeNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func TestMinimizeActions(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		fields   map[string]string
		def      string
		want     string
		withheld []string
	}{
		{"keep and default drop",
			`{"names":"Jana","surname":"Nováková","politicallyExposedPerson":false,"newField":"x"}`,
			map[string]string{"names": "keep", "surname": "keep"}, "drop",
			`{"names":"Jana","surname":"Nováková"}`, []string{"newField", "politicallyExposedPerson"}},
		{"default keep", `{"a":1,"b":2}`, map[string]string{"b": "drop"}, "keep", `{"a":1}`, []string{"b"}},
		{"mask keeps 2 and 2 and the length",
			`{"birthNumber":"9157144238","short":"abc","číslo":"Žluťoučký"}`,
			map[string]string{"birthNumber": "mask", "short": "mask", "číslo": "mask"}, "drop",
			`{"birthNumber":"91******38","short":"***","číslo":"Žl*****ký"}`, []string{"birthNumber", "short", "číslo"}},
		{"keep-bool keeps yes or no only",
			`{"verified":true,"matches":{"surname":{"match":false,"onRecord":"HORÁKOVÁ"},"givenName":false,"dateOfBirth":"no, 1991-07-14"}}`,
			map[string]string{"verified": ActionKeepBool, "matches.surname": ActionKeepBool, "matches.givenName": ActionKeepBool, "matches.dateOfBirth": ActionKeepBool}, "drop",
			`{"verified":true,"matches":{"givenName":false}}`, []string{"matches.dateOfBirth", "matches.surname"}},
		{"mask a number", `{"n":123456}`, map[string]string{"n": "mask"}, "drop", `{"n":"12**56"}`, []string{"n"}},
		{"hash is keyed and stable",
			`{"iin":"900315401233"}`, map[string]string{"iin": "hash"}, "drop",
			`{"iin":"` + hmacHex("test-hash-key", "900315401233") + `"}`, []string{"iin"}},
		{"age from ISO date, at the parent, named after the function",
			`{"birthDate":"2008-11-21","names":"Jan"}`, map[string]string{"birthDate": "derive:age_over_18"}, "drop",
			`{"age_over_18":true}`, []string{"birthDate", "names"}},
		{"age one day short",
			`{"birthDate":"2008-11-22"}`, map[string]string{"birthDate": "derive:age_over_18"}, "drop",
			`{"age_over_18":false}`, []string{"birthDate"}},
		{"age over 21 from a Czech birth number of a woman",
			`{"person":{"birthNumber":"915714/4238"}}`, map[string]string{"person.birthNumber": "derive:age_over_21"}, "drop",
			`{"person":{"age_over_21":true}}`, []string{"person.birthNumber"}},
		{"age from a birth number born 2010",
			`{"birthNumber":"1003150008"}`, map[string]string{"birthNumber": "derive:age_over_18"}, "drop",
			`{"age_over_18":false}`, []string{"birthNumber"}},
		{"age from a Biometric.Vision dd.mm.yyyy date",
			`{"document_recognition_result":{"date_of_birth":"15.03.1990","first_name":"Aigerim"}}`,
			map[string]string{"document_recognition_result.date_of_birth": "derive:age_over_18"}, "drop",
			`{"document_recognition_result":{"age_over_18":true}}`,
			[]string{"document_recognition_result.date_of_birth", "document_recognition_result.first_name"}},
		{"age from dd.mm.yyyy one day short",
			`{"date_of_birth":"22.11.2008"}`, map[string]string{"date_of_birth": "derive:age_over_18"}, "drop",
			`{"age_over_18":false}`, []string{"date_of_birth"}},
		{"age from an unreadable value withholds it",
			`{"birthDate":"sometime"}`, map[string]string{"birthDate": "derive:age_over_18"}, "drop",
			`{}`, []string{"birthDate"}},
		{"country only",
			`{"permanentAddress":{"street":"Wellnerova","country":"CZ"}}`, map[string]string{"permanentAddress": "derive:country_only"}, "drop",
			`{"permanentAddress":"CZ"}`, []string{"permanentAddress"}},
		{"year only", `{"d":"1991-07-14"}`, map[string]string{"d": "derive:year_only"}, "drop", `{"d":"1991"}`, []string{"d"}},
		{"year only from dd.mm.yyyy", `{"d":"15.03.1990"}`, map[string]string{"d": "derive:year_only"}, "drop", `{"d":"1990"}`, []string{"d"}},
		{"last4", `{"card":"516822******4821"}`, map[string]string{"card": "derive:last4"}, "drop", `{"card":"4821"}`, []string{"card"}},
		{"nested arrays",
			`{"data":[{"accountNumber":{"iban":"CZ65","bic":"AIRACZPP","prefix":"19"}},{"accountNumber":{"iban":"CZ66"}}]}`,
			map[string]string{"data[].accountNumber.iban": "keep"}, "drop",
			`{"data":[{"accountNumber":{"iban":"CZ65"}},{"accountNumber":{"iban":"CZ66"}}]}`, []string{"data[].accountNumber.bic", "data[].accountNumber.prefix"}},
		{"array of scalars", `{"technologies":["LDHP","F2F"],"x":[1]}`, map[string]string{"technologies[]": "keep"}, "drop",
			`{"technologies":["LDHP","F2F"]}`, []string{"x"}},
		{"whole subtree kept", `{"a":{"b":{"c":1}}}`, map[string]string{"a": "keep"}, "drop", `{"a":{"b":{"c":1}}}`, nil},
		{"containers emptied by minimisation go too",
			`{"age":{"birthDate":"2000-01-01"},"addr":{"street":"x"},"none":[],"list":[{"a":1}]}`,
			map[string]string{"age.birthDate": "derive:age_over_18", "addr.street": "drop", "none[].x": "keep", "list[].a": "drop"}, "drop",
			`{"age":{"age_over_18":true},"none":[]}`, []string{"addr.street", "age.birthDate", "list[].a"}},
		{"missing named fields are fine", `{"a":1}`, map[string]string{"b": "keep", "c.d": "mask"}, "drop", `{}`, []string{"a"}},
		{"mask on an object withholds it", `{"addr":{"street":"x"}}`, map[string]string{"addr": "mask"}, "drop", `{}`, []string{"addr"}},
		{"top-level array", `[{"a":1,"b":2}]`, map[string]string{"[].a": "keep"}, "drop", `[{"a":1}]`, []string{"[].b"}},
		{"top-level scalar dropped", `"9157144238"`, map[string]string{}, "drop", `{}`, []string{""}},
		{"keys that read as paths never go out", `{"a.b":"x","c[]":1,"a":{"b":"y"}}`, map[string]string{"a.b": "keep"}, "keep", `{"a":{"b":"y"}}`, []string{"a.b", "c[]"}},
		{"an empty key never goes out", `{"":"x","a":1}`, map[string]string{"a": "keep"}, "keep", `{"a":1}`, []string{""}},
		{"large numbers keep precision", `{"n":12345678901234567890}`, map[string]string{"n": "keep"}, "drop", `{"n":12345678901234567890}`, nil},
		{"empty body", ``, map[string]string{}, "drop", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.fields, tt.def, []byte("test-hash-key"), minimizeNow).Minimise([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", got.Body, tt.want)
			}
			if !slices.Equal(got.Withheld, tt.withheld) && !(len(got.Withheld) == 0 && len(tt.withheld) == 0) {
				t.Errorf("withheld %q, want %q", got.Withheld, tt.withheld)
			}
		})
	}
}

func TestMinimizeRefusesNonJSON(t *testing.T) {
	for _, in := range []string{`<html>error</html>`, `{"a":1} {"b":2}`, `{"a":`, `{"a":1,"b":{"c":1,"c":2}}`} {
		if _, err := New(map[string]string{"b.c": "keep"}, "drop", nil, minimizeNow).Minimise([]byte(in)); !errors.Is(err, ErrUnparsable) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestCzechBirthNumber(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"9157144238", "1991-07-14"},  // woman: month + 50
		{"910714/4238", "1991-07-14"}, // man, with slash
		{"045222/1234", "2004-02-22"}, // man, month + 20 (from 2004)
		{"475714123", "1947-07-14"},   // nine digits: before 1954
		{"9113444238", ""},            // month 13
		{"91071", ""},
	}
	for _, tt := range tests {
		got, ok := czechBirthNumber(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("%s accepted as %s", tt.in, got)
			}
			continue
		}
		if !ok || got.Format(time.DateOnly) != tt.want {
			t.Errorf("%s = %s, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
}

func TestBirthDate(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string // "" when no date can be read
	}{
		{"ISO date", "1990-03-15", "1990-03-15"},
		{"RFC 3339", "1990-03-15T08:30:00Z", "1990-03-15"},
		{"Czech birth number", "900315/1234", "1990-03-15"},
		{"unix milliseconds", json.Number("637459200000"), "1990-03-15"},
		{"dd.mm.yyyy (Biometric.Vision)", "15.03.1990", "1990-03-15"},
		{"dd.mm.yyyy on a leap day", "29.02.2000", "2000-02-29"},
		{"dd.mm.yyyy not a date", "31.02.1990", ""},
		{"dd.mm.yyyy leap day of a common year", "29.02.1990", ""},
		{"dd.mm.yyyy month 13", "15.13.1990", ""},
		{"mm.dd.yyyy", "03.15.1990", ""},
		{"unpadded day and month", "5.3.1990", ""},
		{"two-digit year", "15.03.90", ""},
		{"digits as a string are not unix time", "637459200000", ""},
		{"words", "sometime", ""},
		{"empty", "", ""},
		{"not a scalar", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := birthDate(tt.in)
			if tt.want == "" {
				if ok {
					t.Errorf("%v read as %s, want no date", tt.in, got.Format(time.DateOnly))
				}
				return
			}
			if !ok || got.Format(time.DateOnly) != tt.want {
				t.Errorf("%v = %s, %v; want %s", tt.in, got.Format(time.DateOnly), ok, tt.want)
			}
		})
	}
}

// A derivation the gateway cannot make must not fail silently: the source value
// is withheld (so it counts in X-Consentgate-Withheld and is named in the audit
// record), and neither it nor anything derived from it goes out or is recorded
// as disclosed. The reference minimiser agrees.
func TestMinimizeUnderivableIsWithheld(t *testing.T) {
	const path = "document_recognition_result.date_of_birth"
	values := []string{`"sometime"`, `"31.02.1990"`, `"1990-02-30"`, `"15.03.90"`, `""`, `true`, `null`, `{"d":"15.03.1990"}`, `["15.03.1990"]`}
	for _, action := range []string{"derive:age_over_18", "derive:age_over_21", "derive:year_only"} {
		for _, v := range values {
			t.Run(action+" "+v, func(t *testing.T) {
				body := `{"document_recognition_result":{"date_of_birth":` + v + `,"first_name":"Aigerim"},"id":"s1"}`
				fields := map[string]string{path: action, "id": "keep"}
				got, err := New(fields, "drop", []byte("k"), minimizeNow).Minimise([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Body) != `{"id":"s1"}` {
					t.Errorf("body %s, want only the id", got.Body)
				}
				if !slices.Contains(got.Withheld, path) {
					t.Errorf("withheld %q does not name %s", got.Withheld, path)
				}
				if !slices.Equal(got.Disclosed, []string{"id"}) {
					t.Errorf("disclosed %q, want only id", got.Disclosed)
				}
				ref, err := newRef(fields, "drop", []byte("k"), minimizeNow).refMinimize([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if string(ref.Body) != string(got.Body) || !slices.Equal(ref.Withheld, got.Withheld) || !slices.Equal(ref.Disclosed, got.Disclosed) {
					t.Errorf("reference: body %s withheld %q disclosed %q; minimiser: %s %q %q",
						ref.Body, ref.Withheld, ref.Disclosed, got.Body, got.Withheld, got.Disclosed)
				}
			})
		}
	}
}

// FuzzMinimize: whatever the body and whatever the decision, minimisation never
// panics, always yields JSON, and never lets through a value from a dropped path.
func FuzzMinimize(f *testing.F) {
	f.Add(`{"names":"Jana","birthNumber":"9157144238","data":[{"iban":"CZ65"}]}`, "birthNumber")
	f.Add(`[{"a":{"b":[1,2,{"c":"SECRETVALUE"}]}}]`, "[].a.b[].c")
	f.Add(`{"a":"SECRETVALUE","a.b":"x"}`, "a")
	f.Fuzz(func(t *testing.T, body, dropPath string) {
		var doc any
		if json.Unmarshal([]byte(body), &doc) != nil {
			return
		}
		fields := map[string]string{dropPath: "drop"}
		// Keep everything else: the dropped path must still be gone.
		got, err := New(fields, "keep", []byte("k"), minimizeNow).Minimise([]byte(body))
		if err != nil {
			return
		}
		if !json.Valid(got.Body) && len(strings.TrimSpace(body)) > 0 {
			t.Fatalf("minimised body is not JSON: %q", got.Body)
		}
		var out any
		json.Unmarshal(got.Body, &out)
		for _, p := range scalarPaths(out, "") {
			if p == dropPath || strings.HasPrefix(p, dropPath+".") || strings.HasPrefix(p, dropPath+"[]") {
				t.Fatalf("dropped path %q survived as %q in %s", dropPath, p, got.Body)
			}
		}
		// With default drop and nothing named, nothing survives.
		none, err := New(map[string]string{}, "drop", nil, minimizeNow).Minimise([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if s := string(none.Body); s != "{}" && s != "[]" {
			t.Fatalf("default drop let through %s", s)
		}
	})
}

func hmacHex(key, v string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(v))
	return hex.EncodeToString(mac.Sum(nil))
}

// scalarPaths lists the paths at which a scalar value stands.
func scalarPaths(v any, path string) []string {
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k, val := range x {
			out = append(out, scalarPaths(val, JoinPath(path, k))...)
		}
		return out
	case []any:
		var out []string
		for _, el := range x {
			out = append(out, scalarPaths(el, path+"[]")...)
		}
		return out
	default:
		return []string{path}
	}
}

// FuzzMinimizeMatchesReference: the byte-walking minimiser and the tree-based
// reference produce the same document (up to key order) and withhold the same
// paths, for any body and any decision.
func FuzzMinimizeMatchesReference(f *testing.F) {
	f.Add(`{"names":"Jana","birthNumber":"9157144238","addr":{"country":"CZ","street":"x"},"data":[{"iban":"CZ65","bic":"X"}]}`, "birthNumber", "mask", "data[].iban", "drop")
	f.Add(`{"birthDate":"2000-01-01","birthNumber":"0001010008","x":{"y":[1,2,{"z":"SECRET"}]}}`, "birthDate", "derive:age_over_18", "x.y[].z", "keep")
	f.Add(`[{"a":"\u0041\"b","a.b":1}]`, "[].a", "hash", "[].c", "derive:last4")
	f.Add(`{"document_recognition_result":{"date_of_birth":"15.03.1990","first_name":"A"},"edocument_result":{"date_of_birth":"31.02.1990"}}`, "document_recognition_result.date_of_birth", "derive:age_over_18", "edocument_result.date_of_birth", "drop")
	f.Add(`{"d":"31.02.1990","e":"15.03.1990"}`, "d", "derive:year_only", "e", "drop")
	actions := []string{"keep", "drop", "mask", "hash", "derive:age_over_18", "derive:age_over_21", "derive:country_only", "derive:year_only", "derive:last4"}
	f.Fuzz(func(t *testing.T, body, p1, a1, p2, def string) {
		if !json.Valid([]byte(body)) || !slices.Contains(actions, a1) {
			return
		}
		fields := map[string]string{p1: a1, p2: "keep"}
		got, err := New(fields, def, []byte("k"), minimizeNow).Minimise([]byte(body))
		if errors.Is(err, ErrUnparsable) && repeatsKey(body) {
			return // refused as ambiguous; the map-based reference cannot see repeats
		}
		if err != nil {
			t.Fatal(err)
		}
		ref, err := newRef(fields, def, []byte("k"), minimizeNow).refMinimize([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var g, r any
		if err := json.Unmarshal(got.Body, &g); err != nil {
			t.Fatalf("output is not JSON: %q", got.Body)
		}
		json.Unmarshal(ref.Body, &r)
		if !reflect.DeepEqual(g, r) {
			t.Fatalf("body %s with %v default %s:\n got %s\nwant %s", body, fields, def, got.Body, ref.Body)
		}
		if !slices.Equal(got.Withheld, ref.Withheld) {
			t.Fatalf("withheld %q, reference %q", got.Withheld, ref.Withheld)
		}
	})
}

// repeatsKey reports whether some object in the JSON body repeats a key.
func repeatsKey(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	var stack []map[string]bool
	expectKey := []bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, map[string]bool{})
				expectKey = append(expectKey, true)
			case '[':
				stack = append(stack, nil)
				expectKey = append(expectKey, false)
			default:
				stack, expectKey = stack[:len(stack)-1], expectKey[:len(expectKey)-1]
				if len(expectKey) > 0 && stack[len(stack)-1] != nil {
					expectKey[len(expectKey)-1] = true
				}
			}
			continue
		case string:
			if n := len(stack); n > 0 && stack[n-1] != nil && expectKey[n-1] {
				if stack[n-1][v] {
					return true
				}
				stack[n-1][v] = true
				expectKey[n-1] = false
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1] != nil {
			expectKey[n-1] = true
		}
	}
}

// The tokenize action hands each scalar to the token vault and writes the token
// in its place; a failure fails the whole document, and so does a decision
// that tokenizes with no vault.
func TestMinimizeTokenize(t *testing.T) {
	in := `{"birthNumber":"9157144238","iban":["CZ65","GB82"],"n":42,"doc":{"x":1}}`
	fields := map[string]string{"birthNumber": "tokenize", "iban[]": "tokenize", "n": "tokenize", "doc": "tokenize"}
	var seen []string
	m := New(fields, "drop", nil, time.Now())
	m.Tokenize = func(path, value string) (string, error) {
		seen = append(seen, path+"="+value)
		return "tok_" + strconv.Itoa(len(seen)), nil
	}
	out, err := m.Minimise([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"birthNumber":"tok_1","iban":["tok_2","tok_3"],"n":"tok_4"}`; string(out.Body) != want {
		t.Errorf("body %s, want %s", out.Body, want)
	}
	if !slices.Equal(out.Tokenized, []string{"birthNumber", "iban[]", "n"}) || slices.Contains(out.Disclosed, "birthNumber") {
		t.Errorf("tokenized %v, disclosed %v", out.Tokenized, out.Disclosed)
	}
	if !slices.Equal(seen, []string{"birthNumber=9157144238", "iban[]=CZ65", "iban[]=GB82", "n=42"}) {
		t.Errorf("vault saw %v", seen)
	}

	m = New(fields, "drop", nil, time.Now())
	m.Tokenize = func(string, string) (string, error) { return "", errors.New("vault down") }
	if out, err := m.Minimise([]byte(in)); err == nil || out.Body != nil {
		t.Errorf("a failed token passed: %s, %v", out.Body, err)
	}
	if _, err := New(fields, "drop", nil, time.Now()).Minimise([]byte(in)); !errors.Is(err, ErrNoTokens) {
		t.Errorf("no vault: %v", err)
	}
}
