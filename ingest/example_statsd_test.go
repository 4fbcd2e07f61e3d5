package ingest_test

import (
	"errors"
	"fmt"

	"github.com/pharos-node/pharos-node/ingest"
)

func ExampleParseStatsDLine() {
	for _, line := range []string{
		"api.requests:3|c|@0.5|#env:prod,canary",
		"queue.depth:42|g",
		"db.query:12.5|ms|#table:users",
		"queue.depth:-1|g",
		"users:42|s",
	} {
		m, err := ingest.ParseStatsDLine([]byte(line))
		switch {
		case errors.Is(err, ingest.ErrGaugeDelta):
			fmt.Println("refused, a gauge delta:", line)
		case err != nil:
			fmt.Println("refused:", err)
		default:
			fmt.Println(m.Name, m.Kind, m.Value, m.Tags)
		}
	}
	// Output:
	// api.requests counter 6 [{env prod} {canary }]
	// queue.depth gauge 42 []
	// db.query histogram 12.5 [{table users}]
	// refused, a gauge delta: queue.depth:-1|g
	// refused: statsd line "users:42|s": ingest: unsupported StatsD type: "s"
}
