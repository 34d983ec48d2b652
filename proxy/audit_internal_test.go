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
