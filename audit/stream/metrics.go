package stream

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes every stream's lag, deliveries, failures and state, labelled
// by stream name: what the shipped alerts watch.
type Collector []*Stream

var (
	lagDesc = prometheus.NewDesc("consentgate_audit_stream_lag_records",
		"Audit records committed and not yet acknowledged by the stream's receiver.", []string{"stream"}, nil)
	deliveredDesc = prometheus.NewDesc("consentgate_audit_stream_delivered_total",
		"Audit records the stream's receiver acknowledged.", []string{"stream"}, nil)
	failuresDesc = prometheus.NewDesc("consentgate_audit_stream_failures_total",
		"Batches of audit records the stream could not deliver (each is sent again).", []string{"stream"}, nil)
	upDesc = prometheus.NewDesc("consentgate_audit_stream_up",
		"1 while the stream's last batch was acknowledged.", []string{"stream"}, nil)
)

func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- deliveredDesc
	ch <- failuresDesc
	ch <- upDesc
}

func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c {
		st := s.Stats()
		up := 0.0
		if st.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), s.Name)
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(st.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(st.Failures), s.Name)
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, s.Name)
	}
}
