package otlp

import (
	"encoding/json"
	"net/http"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// The body of every 4xx and 5xx answer is a google.rpc.Status (OTLP/HTTP), in the request's
// encoding: protobuf fields 1 (code, int32) and 2 (message, string), or the JSON object
// {"code": N, "message": "..."}. details is never sent.

// gRPC status codes, as the specification pairs them with HTTP statuses.
const (
	codeInvalidArgument   = 3
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
)

func grpcCode(status int) int32 {
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return codeUnimplemented
	case http.StatusRequestEntityTooLarge:
		return codeResourceExhausted
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return codeUnavailable
	case http.StatusInternalServerError:
		return codeInternal
	}
	return codeInvalidArgument
}

// statusBody encodes a google.rpc.Status.
func statusBody(jsonBody bool, code int32, message string) []byte {
	if jsonBody {
		out, err := json.Marshal(struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}{code, message})
		if err != nil {
			return []byte(`{"code":13}`)
		}
		return out
	}
	message = strings.ToValidUTF8(message, "\uFFFD") // a string field must be UTF-8
	var out []byte
	out = protowire.AppendTag(out, 1, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(code))
	out = protowire.AppendTag(out, 2, protowire.BytesType)
	return protowire.AppendString(out, message)
}
