package spill

import "github.com/prometheus/client_golang/prometheus"

// collector exports a Log's Stats as pharos_spill_* metrics. It reads them at scrape time, so
// the append path pays nothing for metrics.
type collector struct {
	l     *Log
	descs []*prometheus.Desc
}

type metricDef struct {
	name, help string
	typ        prometheus.ValueType
	value      func(Stats) float64
}

// metricDefs lists the exported metrics.
func metricDefs() []metricDef {
	return []metricDef{
		{"records", "Untrimmed records in the spill log.", prometheus.GaugeValue, func(s Stats) float64 { return float64(s.Records) }},
		{"bytes", "Payload bytes of the untrimmed records.", prometheus.GaugeValue, func(s Stats) float64 { return float64(s.Bytes) }},
		{"segments", "Segment files.", prometheus.GaugeValue, func(s Stats) float64 { return float64(s.Segments) }},
		{"disk_bytes", "Bytes in the segment files and the write buffer.", prometheus.GaugeValue, func(s Stats) float64 { return float64(s.DiskBytes) }},
		{"appended_records_total", "Records appended.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Appended) }},
		{"appended_bytes_total", "Payload bytes appended.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.AppendedBytes) }},
		{"trimmed_records_total", "Records trimmed after delivery.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Trimmed) }},
		{"dropped_records_total", "Untrimmed records deleted by the drop-oldest overflow policy.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Dropped) }},
		{"dropped_bytes_total", "Their payload bytes.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.DroppedBytes) }},
		{"refused_records_total", "Appends refused at the size cap (refuse policy).", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Refused) }},
		{"lost_records_total", "Records found lost to damage (recovery or reads).", prometheus.CounterValue, func(s Stats) float64 { return float64(s.LostRecords) }},
		{"lost_bytes_total", "Their payload bytes.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.LostBytes) }},
		{"write_errors_total", "Failed writes (ENOSPC among them).", prometheus.CounterValue, func(s Stats) float64 { return float64(s.WriteErrors) }},
		{"sync_errors_total", "Failed fsyncs.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.SyncErrors) }},
		{"syncs_total", "Group commits that fsynced data.", prometheus.CounterValue, func(s Stats) float64 { return float64(s.Syncs) }},
	}
}

func newCollector(l *Log) *collector {
	c := &collector{l: l}
	for _, d := range metricDefs() {
		c.descs = append(c.descs, prometheus.NewDesc("pharos_spill_"+d.name, d.help, nil, prometheus.Labels{"dir": l.dir}))
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	for i, d := range metricDefs() {
		ch <- prometheus.MustNewConstMetric(c.descs[i], d.typ, d.value(s))
	}
}
