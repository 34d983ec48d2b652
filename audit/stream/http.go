package stream

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Formats of the HTTP sink.
const (
	FormatJSONL = "jsonl" // one record per line, as exported
	FormatHEC   = "hec"   // Splunk HTTP Event Collector events, the record as event
)

// HTTP posts each batch to URL. A 2xx answer acknowledges it (for HEC, also a
// body whose code is not an error).
type HTTP struct {
	URL    string
	Format string
	// Token is sent as "Authorization: Splunk <token>" (HEC) or "Bearer <token>".
	Token string
	// Host names this node in HEC events.
	Host   string
	Client *http.Client
}

func (h *HTTP) Send(ctx context.Context, lines []audit.Line) error {
	var body bytes.Buffer
	for _, l := range lines {
		if h.Format == FormatHEC {
			m := metaOf(l)
			fmt.Fprintf(&body, `{"time":%s,"host":%s,"source":"consentgate","sourcetype":"consentgate:audit","event":`,
				strconv.FormatFloat(float64(m.Time.UnixMicro())/1e6, 'f', 6, 64), quote(h.Host))
			body.Write(l.Data)
			body.WriteString("}\n")
			continue
		}
		body.Write(l.Data)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	switch {
	case h.Token != "" && h.Format == FormatHEC:
		req.Header.Set("Authorization", "Splunk "+h.Token)
	case h.Token != "":
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", redacted(h.URL), resp.Status)
	}
	if h.Format == FormatHEC {
		var hec struct {
			Code *int   `json:"code"`
			Text string `json:"text"`
		}
		if json.Unmarshal(answer, &hec) == nil && hec.Code != nil && *hec.Code != 0 {
			return fmt.Errorf("%s answered HEC code %d (%.100s)", redacted(h.URL), *hec.Code, hec.Text)
		}
	}
	return nil
}

// NewClient is the HTTP client of the HTTP and OTLP sinks: it follows no
// redirect, since a redirected POST comes back as a GET whose 200 would
// acknowledge a batch no receiver took, and a redirect to plain http would
// carry the token in clear.
func NewClient(tc *tls.Config) *http.Client {
	return &http.Client{
		Timeout:       time.Minute,
		Transport:     &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// redacted is u without what could be a secret: user info and query.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the receiver"
	}
	return p.Scheme + "://" + p.Host + p.Path
}

func (h *HTTP) Close() error {
	h.Client.CloseIdleConnections()
	return nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
