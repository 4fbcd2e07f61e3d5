package container

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// The pharos-node image's user and paths (containers/pharos-node/Containerfile).
const (
	nodeUID    = 65532
	nodeConfig = "/etc/pharos-node/pharos.yaml"
	nodeData   = "/var/lib/pharos-node"
	nodeHTTP   = 9180
)

// waitFor polls cond every 100 ms until it holds, and fails the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// daemon is `pharos-node run` in its container.
type daemon struct {
	*container
	Net    member
	URL    string // http://P.3:9180
	client *http.Client
}

// startDaemon starts the pharos-node image's default command, `run`, in acked mode with a
// configuration file and a cookie file mounted and its spill directory in a volume. As in
// compose.yaml, the nodes go by host names: pharos@node, and the Brain's, which the container
// resolves (--add-host, where compose has its DNS).
func startDaemon(t *testing.T, l *lan, b *brain) *daemon {
	t.Helper()
	m := l.join("node")
	_, brainHost, _ := strings.Cut(b.Node, "@")
	cfg := fmt.Sprintf(`node:
  name: pharos@node
  cookie_file: /run/secrets/erlang-cookie
brain:
  node: %s
  name: %s
  mode: acked
spill:
  dir: %s/spill
delivery:
  base_backoff: 200ms
  max_backoff: 2s
ingest:
  http:
    listen: 0.0.0.0:%d
log:
  format: json
shutdown_timeout: 20s
`, b.Node, brainName, nodeData, nodeHTTP)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "pharos.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{Net: m, URL: fmt.Sprintf("http://%s:%d", m.IP, nodeHTTP), client: newClient(t)}
	d.container = runContainer(t, "node", "--network", "ns:"+m.Path, "--hostname", "node",
		"--add-host", brainHost+":"+b.Net.IP,
		"--health-interval", "disable", // podman's timers need systemd; the test runs the check
		"--volume", cfgFile+":"+nodeConfig+":ro",
		"--volume", cookieFile(t, b.Cookie, nodeUID)+":/run/secrets/erlang-cookie:ro",
		"--volume", volume(t, "node-data")+":"+nodeData,
		nodeImage)
	return d
}

// newClient is an HTTP client whose idle connections t.Cleanup closes.
func newClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// Ready reports whether /readyz answers 200: the daemon is delivering to the Brain.
func (d *daemon) Ready() bool {
	resp, err := d.client.Get(d.URL + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// ingestAnswer is the HTTP API's answer (package ingest).
type ingestAnswer struct {
	Accepted int `json:"accepted"`
	Refused  []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"refused"`
	Error string `json:"error"`
}

// post sends metrics seq = from..to-1 of source over HTTP, 500 a request. Records the daemon
// refuses for being busy (503) are sent again; any other failure fails the test, since a
// request without an answer may or may not have been taken.
func (d *daemon) post(t *testing.T, source string, from, to int) {
	t.Helper()
	for lo := from; lo < to; lo += 500 {
		pending := make([]int, 0, 500)
		for seq := lo; seq < min(lo+500, to); seq++ {
			pending = append(pending, seq)
		}
		for tries := 0; len(pending) > 0; tries++ {
			if tries == 100 {
				t.Fatalf("records %v still refused after %d tries", pending[:min(len(pending), 5)], tries)
			}
			var body bytes.Buffer
			body.WriteByte('[')
			for i, seq := range pending {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"name":"container.test","kind":"gauge","value":%d,"tags":{"seq":"%d"},"source":%q}`, seq, seq, source)
			}
			body.WriteByte(']')
			resp, err := d.client.Post(d.URL+"/v1/metrics", "application/json", &body)
			if err != nil {
				t.Fatalf("POST /v1/metrics: %v", err)
			}
			var ans ingestAnswer
			err = json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			switch {
			case err != nil:
				t.Fatalf("POST /v1/metrics: %s: %v", resp.Status, err)
			case resp.StatusCode == http.StatusOK:
				pending = nil
			case resp.StatusCode == http.StatusServiceUnavailable && ans.Error == "":
				refused := make([]int, 0, len(ans.Refused))
				for _, r := range ans.Refused {
					refused = append(refused, pending[r.Index])
				}
				pending = refused
				time.Sleep(100 * time.Millisecond)
			default:
				t.Fatalf("POST /v1/metrics: %s: %+v", resp.Status, ans)
			}
		}
	}
}

// exactlyOnce checks that the Brain got source's records 0..n-1 once each, in order, all
// acknowledged to one pharos-node source (SourceId), and returns that source's id.
func exactlyOnce(t *testing.T, b *brain, source string, n int) string {
	t.Helper()
	s, _ := b.WaitStats(2*time.Minute, func(s erltest.Stats) bool { return s.Sources[source].Received >= int64(n) })
	src := s.Sources[source]
	var ids []string
	for id, next := range s.Acked {
		if next == int64(n) {
			ids = append(ids, id)
		}
	}
	if !src.Exactly(int64(n)) || s.Invalid != 0 || len(ids) != 1 {
		t.Fatalf("Brain: %+v, invalid %d, acked %v; want %d records once each, in order, acknowledged to one source",
			src, s.Invalid, s.Acked, n)
	}
	t.Logf("Brain: %d records of %s once each, in order (lost %d, duplicates %d); NextSeq %d for SourceId %s",
		src.Unique, source, src.Missing, src.Duplicates, s.Acked[ids[0]], ids[0])
	return ids[0]
}

// pharos-node's container (`run` in acked mode, its configuration and cookie mounted) delivers
// what it is sent over HTTP to the Brain's container, passes its HEALTHCHECK, says it is not
// ready while the Brain's container is stopped, keeps what arrives meanwhile, and once the
// Brain's container is started again the Brain has every record exactly once; a stop of
// pharos-node's container then ends it cleanly.
func TestNodeContainerAcrossBrainContainerRestart(t *testing.T) {
	const n, source = 30_000, "ct-daemon"
	forEachRelease(t, func(t *testing.T, rel string) {
		l := newLAN(t)
		b := startBrain(t, l, brainOptions{Release: rel, State: true, Host: "brain"})
		d := startDaemon(t, l, b)
		waitFor(t, 30*time.Second, "pharos-node's HEALTHCHECK", d.Healthy)
		waitFor(t, 60*time.Second, "pharos-node ready (streaming to the Brain)", d.Ready)

		d.post(t, source, 0, n/3)
		if _, ok := b.WaitStats(time.Minute, func(s erltest.Stats) bool { return s.Sources[source].Next >= n/6 }); !ok {
			t.Fatal("the Brain got too little before its restart")
		}
		mustPodman(t, "stop", "--time", "10", b.Name)
		t.Log("the Brain's container stopped")
		waitFor(t, 30*time.Second, "pharos-node not ready while the Brain is stopped", func() bool { return !d.Ready() })
		if !d.Healthy() {
			t.Fatal("pharos-node's HEALTHCHECK fails while the Brain is away: alive is not ready")
		}
		d.post(t, source, n/3, 2*n/3)
		b.start()
		t.Log("the Brain's container started again")
		waitFor(t, 60*time.Second, "pharos-node ready again", d.Ready)
		d.post(t, source, 2*n/3, n)
		exactlyOnce(t, b, source, n)

		mustPodman(t, "stop", "--time", "30", d.Name)
		if code := d.Inspect("{{.State.ExitCode}}"); code != "0" {
			t.Fatalf("pharos-node's container exited with %s after SIGTERM", code)
		}
	})
}

// nodeSendSummary is the part of `pharos-node send --mode acked`'s summary the test reads.
type nodeSendSummary struct {
	SourceID     string `json:"source_id"`
	Count        int    `json:"count"`
	ResumedAt    uint64 `json:"resumed_at"`
	Stored       int    `json:"stored"`
	Acknowledged uint64 `json:"acknowledged"`
	Pending      int    `json:"pending"`
	Complete     bool   `json:"complete"`
}

// `podman kill` of pharos-node's container while it sends in acked mode, and a new container
// on the same spill volume: it resumes where the volume says, and the Brain has every record
// exactly once.
func TestNodeContainerKilledResumesOnItsSpillVolume(t *testing.T) {
	const n, source = 150_000, "ct-kill"
	forEachRelease(t, func(t *testing.T, rel string) {
		l := newLAN(t)
		// 30 ms a batch of 1,000: at most 33,000 records/s, 4.5 s for the stream at least, so
		// that the kill lands mid-stream however long `podman kill` takes on a loaded machine
		// (the Brain processed up to 57,000 records more in one here).
		b := startBrain(t, l, brainOptions{Release: rel, State: true, DelayMs: 30})
		m := l.join("node")
		data := volume(t, "node-data")
		args := []string{"--network", "ns:" + m.Path, "--hostname", "node", "--env", "PHAROS_COOKIE=" + b.Cookie,
			"--volume", data + ":" + nodeData, nodeImage,
			"send", "--mode", "acked", "--spill-dir", nodeData + "/spill", "--count", strconv.Itoa(n),
			"--source", source, "--brain-node", b.Node, "--brain-name", brainName, "--name", "pharos@" + m.IP,
			"--epmd-port", "4369", "--timeout", "180s", "--max-unacked", "20000"}

		first := runContainer(t, "sender-1", args...)
		s, ok := b.WaitStats(time.Minute, func(s erltest.Stats) bool { return s.Sources[source].Next >= n/5 })
		if !ok || s.Sources[source].Next >= n {
			t.Fatalf("Brain at %+v: want the stream under way", s.Sources[source])
		}
		mustPodman(t, "kill", first.Name)
		if code := first.Wait(30 * time.Second); code != 137 {
			t.Fatalf("the killed container exited with %d, want 137 (SIGKILL)", code)
		}
		t.Logf("pharos-node's container killed with the Brain at %d", b.Stats().Sources[source].Next)

		second := runContainer(t, "sender-2", args...)
		if code := second.Wait(3 * time.Minute); code != 0 {
			t.Fatalf("the second container exited with %d", code)
		}
		var sum nodeSendSummary
		for _, line := range strings.Split(second.Logs(), "\n") {
			if strings.HasPrefix(line, "{") && strings.Contains(line, `"source_id"`) {
				if err := json.Unmarshal([]byte(line), &sum); err != nil {
					t.Fatalf("summary %q: %v", line, err)
				}
			}
		}
		t.Logf("second run: %+v", sum)
		if !sum.Complete || sum.ResumedAt == 0 || sum.ResumedAt >= n || sum.Pending != 0 {
			t.Fatalf("second run %+v: want it complete, resumed mid-stream", sum)
		}
		if id := exactlyOnce(t, b, source, n); id != sum.SourceID {
			t.Fatalf("the Brain acknowledged SourceId %s, the spill volume's is %s", id, sum.SourceID)
		}
	})
}
