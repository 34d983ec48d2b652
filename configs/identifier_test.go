package configs

import (
	"slices"
	"testing"
)

func TestIdentifierField(t *testing.T) {
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
		if got := IdentifierField(tt.path, tt.category); got != tt.want {
			t.Errorf("IdentifierField(%s, %s) = %v", tt.path, tt.category, got)
		}
	}
}

// An operation's identifiers are its national ids, document numbers and the
// fields it gives a token format, sorted, and nothing else of the document
// category.
func TestOperationIdentifiers(t *testing.T) {
	op := &Operation{Fields: Fields{Response: map[string]string{
		"primaryPersonalDocument.validTo": "document", "birthNumber": "national_id", "passport.passportNo": "document",
		"primaryPersonalDocument.number": "document", "names": "identity", "id": "metadata"}},
		Tokens: map[string]*TokenFormat{"passport.passportNo": nil}}
	if got, want := op.Identifiers(), []string{"birthNumber", "passport.passportNo", "primaryPersonalDocument.number"}; !slices.Equal(got, want) {
		t.Errorf("identifiers %v, want %v", got, want)
	}
}
