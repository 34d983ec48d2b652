package proxy

import (
	"slices"
	"testing"
)

func TestDisclosedCategories(t *testing.T) {
	fields := map[string]string{"names": "identity", "birthNumber": "national_id", "data[].iban": "account",
		"permanentAddress": "address", "id": "metadata"}
	got := disclosedCategories([]string{"names", "birthNumber", "data[].iban", "permanentAddress.street", "id", "age_over_18", "unknown"}, fields)
	if want := []string{"account", "address", "derived_age", "identity", "national_id"}; !slices.Equal(got, want) {
		t.Errorf("categories %v, want %v", got, want)
	}
}

func TestIdentifierPaths(t *testing.T) {
	tests := []struct {
		path, category string
		want           bool
	}{
		{"birthNumber", "national_id", true},
		{"person.iin", "national_id", true},
		{"primaryPersonalDocument.number", "document", true},
		{"document_recognition_result.document_number", "document", true},
		{"identityDocument.type", "document", false},
		{"names", "identity", false},
	}
	for _, tt := range tests {
		if got := identifierPath(tt.path, tt.category); got != tt.want {
			t.Errorf("identifierPath(%s, %s) = %v", tt.path, tt.category, got)
		}
	}
}
