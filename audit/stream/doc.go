// Package stream delivers the audit log to SIEMs: every record, in its export
// form, in order, at least once, from a cursor kept on disk, over syslog (RFC
// 5424 over TLS, RFC 5425), OTLP logs or HTTP JSON lines (Splunk HEC).
//
// A Stream reads committed records from the log (never the gateway's calls) and
// hands batches to its Sink; a batch the sink acknowledges moves the cursor, one
// it fails is sent again after a backoff. The backlog is the log itself, on
// disk: a receiver away for an hour costs no memory, and a restart resumes at the
// cursor.
package stream
