package policy

import (
	"encoding/json"
	"fmt"
)

// Replayable is the input as the audit record keeps it: without the consent
// subject (personal, even as an HMAC it links people) and without the field →
// category maps (they come from the vendor profile, by operation). With them
// `consentgate policy replay` asks a candidate policy the question the gateway
// asked.
func (in *Input) Replayable() string {
	v := in.value()
	if c, ok := v["consent"].(map[string]any); ok {
		delete(c, "subject")
	}
	delete(v, "fields")
	b, _ := json.Marshal(v)
	return string(b)
}

// ReplayInput rebuilds an input from its recorded form and the operation's
// field maps.
func ReplayInput(recorded string, requestFields, responseFields map[string]string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(recorded), &v); err != nil {
		return nil, fmt.Errorf("recorded policy input: %w", err)
	}
	v["fields"] = map[string]any{"request": fieldMap(requestFields), "response": fieldMap(responseFields)}
	return v, nil
}
