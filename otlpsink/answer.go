package otlpsink

import (
	"encoding/json"
	"mime"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
)

// Reading the receiver's answers: a 2xx's Export*ServiceResponse (partial_success), an error's
// google.rpc.Status (its message), in protobuf or JSON as the Content-Type says.

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
	maxMessage      = 256
)

func mediaType(ctype string) string {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return ""
	}
	return mt
}

// partialSuccess reads the rejected points (or log records) and the message of a 2xx answer;
// zero when the body is empty or unreadable.
func partialSuccess(sig signal, ctype string, data []byte) (int64, string) {
	if len(data) == 0 {
		return 0, ""
	}
	var msg proto.Message
	mresp := &colmetricspb.ExportMetricsServiceResponse{}
	lresp := &collogspb.ExportLogsServiceResponse{}
	if sig == signalLogs {
		msg = lresp
	} else {
		msg = mresp
	}
	var err error
	switch mediaType(ctype) {
	case contentJSON:
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
	default:
		err = proto.Unmarshal(data, msg)
	}
	if err != nil {
		return 0, ""
	}
	if sig == signalLogs {
		ps := lresp.GetPartialSuccess()
		return ps.GetRejectedLogRecords(), clip(ps.GetErrorMessage())
	}
	ps := mresp.GetPartialSuccess()
	return ps.GetRejectedDataPoints(), clip(ps.GetErrorMessage())
}

// statusMessage reads the message of an error answer's google.rpc.Status (protobuf field 2, or
// JSON's "message"), or its text.
func statusMessage(ctype string, data []byte) string {
	switch mediaType(ctype) {
	case contentProtobuf:
		for b := data; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return ""
			}
			b = b[n:]
			if num == 2 && typ == protowire.BytesType {
				v, n := protowire.ConsumeBytes(b)
				if n < 0 {
					return ""
				}
				return clip(string(v))
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return ""
			}
			b = b[n:]
		}
		return ""
	case contentJSON:
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &st) == nil {
			return clip(st.Message)
		}
	}
	return clip(strings.TrimSpace(string(data)))
}

// clip bounds a message for logs and errors, as valid UTF-8.
func clip(s string) string {
	if len(s) > maxMessage {
		s = s[:maxMessage]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
