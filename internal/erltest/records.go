package erltest

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Record is one record the reference Brain received, as it decoded it (a metric or an alert).
type Record struct {
	Type        string      `json:"type"` // "metric" or "alert"
	Name        string      `json:"name"`
	Kind        string      `json:"kind"`     // metrics: counter, gauge, histogram
	Value       float64     `json:"value"`    // metrics
	Severity    string      `json:"severity"` // alerts
	Message     string      `json:"message"`  // alerts
	Tags        [][2]string `json:"tags"`
	TimestampMs int64       `json:"timestamp_ms"`
	Source      string      `json:"source"`
}

// Tag returns the value of the tag key and whether the record has it.
func (r Record) Tag(key string) (string, bool) {
	for _, t := range r.Tags {
		if t[0] == key {
			return t[1], true
		}
	}
	return "", false
}

// lastRecordsExpr formats the Brain's last N records as JSON, hex-encoded so that the control
// port's one-line answer carries any bytes.
const lastRecordsExpr = `binary:encode_hex(iolist_to_binary(pharos_brain_json:encode(
	[case R of
	   {metric, N, K, V, T, Ts, S} -> #{type => metric, name => N, kind => K, value => V,
	       tags => [[Tk, Tv] || {Tk, Tv} <- T], timestamp_ms => Ts, source => S};
	   {alert, N, Sev, M, T, Ts, S} -> #{type => alert, name => N, severity => Sev, message => M,
	       tags => [[Tk, Tv] || {Tk, Tv} <- T], timestamp_ms => Ts, source => S}
	 end || R <- pharos_brain_store:last(MAX)])))`

// LastRecords returns the last n (at most 100) valid records the Brain received, oldest first,
// as it decoded them.
func (b *Brain) LastRecords(n int) []Record {
	b.t.Helper()
	out := b.Eval(strings.ReplaceAll(lastRecordsExpr, "MAX", strconv.Itoa(n)))
	text, ok := strings.CutPrefix(out, `<<"`)
	if ok {
		text, ok = strings.CutSuffix(text, `">>`)
	}
	if !ok {
		b.t.Fatalf("erltest: last records: unexpected answer %.200s", out)
	}
	raw, err := hex.DecodeString(text)
	if err != nil {
		b.t.Fatalf("erltest: last records: %v", err)
	}
	var recs []Record
	if err := json.Unmarshal(raw, &recs); err != nil {
		b.t.Fatalf("erltest: last records: %v: %.300s", err, raw)
	}
	return recs
}
