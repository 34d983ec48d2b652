package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/consentgate/consentgate/audit"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// OTLP exports each batch as OTLP/HTTP logs (protobuf) to URL, the
// collector's logs endpoint (…/v1/logs): a record's line is the log body, its
// sequence number, kind and the log's id attributes. A 2xx answer that rejects
// no record acknowledges the batch.
type OTLP struct {
	URL    string
	Node   string // host.name of the resource
	LogID  string
	Client *http.Client
}

func (o *OTLP) Send(ctx context.Context, lines []audit.Line) error {
	recs := make([]*logs.LogRecord, 0, len(lines))
	for _, l := range lines {
		m := metaOf(l)
		recs = append(recs, &logs.LogRecord{
			TimeUnixNano: uint64(m.Time.UnixNano()), ObservedTimeUnixNano: uint64(m.Time.UnixNano()),
			SeverityNumber: logs.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "INFO", EventName: "consentgate.audit." + m.Kind,
			Body: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: string(l.Data)}},
			Attributes: []*common.KeyValue{
				attr("consentgate.audit.seq", &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: int64(l.Seq)}}),
				attr("consentgate.audit.kind", str(m.Kind)),
				attr("consentgate.audit.log_id", str(o.LogID)),
			},
		})
	}
	msg := &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource: &resource.Resource{Attributes: []*common.KeyValue{
			attr("service.name", str("consentgate")), attr("host.name", str(o.Node))}},
		ScopeLogs: []*logs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "consentgate/audit"}, LogRecords: recs}},
	}}}
	body, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", redacted(o.URL), resp.Status)
	}
	var got collogs.ExportLogsServiceResponse
	if proto.Unmarshal(answer, &got) == nil && got.GetPartialSuccess().GetRejectedLogRecords() > 0 {
		return fmt.Errorf("%s rejected %d of %d records (%.100s)", redacted(o.URL), got.GetPartialSuccess().GetRejectedLogRecords(),
			len(lines), got.GetPartialSuccess().GetErrorMessage())
	}
	return nil
}

func (o *OTLP) Close() error {
	o.Client.CloseIdleConnections()
	return nil
}

func attr(k string, v *common.AnyValue) *common.KeyValue { return &common.KeyValue{Key: k, Value: v} }

func str(s string) *common.AnyValue {
	return &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: s}}
}
