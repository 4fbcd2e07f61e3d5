package container

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// composeService is what the test takes from a service of compose.yaml.
type composeService struct {
	Hostname    string            `yaml:"hostname"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
}

// composeServices reads compose.yaml's services, with ${PHAROS_COOKIE...} replaced by cookie.
func composeServices(t *testing.T, cookie string) map[string]composeService {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	cookieVar := regexp.MustCompile(`\$\{PHAROS_COOKIE[^}]*\}`)
	for name, s := range f.Services {
		for k, v := range s.Environment {
			s.Environment[k] = cookieVar.ReplaceAllString(v, cookie)
			if strings.Contains(s.Environment[k], "${") {
				t.Fatalf("compose.yaml: %s: %s=%s: a variable the test does not know", name, k, v)
			}
		}
	}
	return f.Services
}

// composeVolumes turns a service's "NAME:PATH" volumes into --volume options on volumes of the
// test's own.
func composeVolumes(t *testing.T, s composeService) []string {
	t.Helper()
	var args []string
	for _, v := range s.Volumes {
		name, path, ok := strings.Cut(v, ":")
		if !ok || strings.ContainsAny(name, "./") {
			t.Fatalf("compose.yaml: volume %q: the test runs named volumes only", v)
		}
		args = append(args, "--volume", volume(t, name)+":"+path)
	}
	return args
}

// compose.yaml's two services, run as compose would run them (their host names, environment and
// volumes; the image's own configuration of pharos-node; names resolved as compose's DNS does,
// here with --add-host): pharos-node delivers to the Brain, exactly once.
func TestComposeServices(t *testing.T) {
	const n, source = 5_000, "ct-compose"
	forEachRelease(t, func(t *testing.T, rel string) {
		l := newLAN(t)
		cookie := "c" + randomHex(12)
		svc := composeServices(t, cookie)
		brainSvc, nodeSvc := svc["brain"], svc["pharos-node"]
		brainHost := brainSvc.Hostname
		b := startBrain(t, l, brainOptions{Release: rel, Host: brainHost, Cookie: cookie,
			Env: brainSvc.Environment, Args: composeVolumes(t, brainSvc)})
		if b.Node != brainSvc.Environment["BRAIN_NODE"] {
			t.Fatalf("the Brain runs as %s, compose.yaml names it %s", b.Node, brainSvc.Environment["BRAIN_NODE"])
		}
		m := l.join("node")
		args := []string{"--network", "ns:" + m.Path, "--hostname", nodeSvc.Hostname,
			"--add-host", brainHost + ":" + b.Net.IP, "--health-interval", "disable"}
		args = append(args, composeVolumes(t, nodeSvc)...)
		args = append(append(args, envArgs(nodeSvc.Environment)...), nodeImage)
		d := &daemon{Net: m, URL: "http://" + m.IP + ":9180", client: newClient(t)}
		d.container = runContainer(t, "node", args...)
		waitFor(t, 30*time.Second, "pharos-node's HEALTHCHECK", d.Healthy)
		waitFor(t, 60*time.Second, "pharos-node ready", d.Ready)
		d.post(t, source, 0, n)
		exactlyOnce(t, b, source, n)
	})
}
