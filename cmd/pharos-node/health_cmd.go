package main

// pharos-node health: GET the daemon's /healthz (or /readyz) and exit 0 on 200, 1 on
// anything else. It exists for container images without curl (the pharos-node image is FROM
// scratch): their HEALTHCHECK runs the binary itself. The address comes from --url, else from
// the configuration `run` reads (--config, PHAROS_* variables): admin.listen, else
// ingest.http.listen, a wildcard host dialled on loopback.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pharos-node/pharos-node/internal/config"
)

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("health")
	url := fs.String("url", "", "URL to GET (default: /healthz on the admin address of the configuration)")
	configFile := fs.String("config", "", "the daemon's YAML configuration, for its admin address")
	ready := fs.Bool("ready", false, "check /readyz (delivering to the Brain) instead of /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on the whole request")
	if code, done := parseFlags("health", fs, args, stdout, stderr); done {
		return code
	}
	target := *url
	if target == "" {
		var cfgArgs []string
		if *configFile != "" {
			cfgArgs = []string{"--config", *configFile}
		}
		cfg, err := config.Load(cfgArgs, os.Environ(), os.ReadFile)
		if err != nil {
			fmt.Fprintf(stderr, "pharos-node health: %v\n", err)
			return 2
		}
		path := "/healthz"
		if *ready {
			path = "/readyz"
		}
		if target, err = adminURL(cfg, path); err != nil {
			fmt.Fprintf(stderr, "pharos-node health: %v\n", err)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node health: %v\n", err)
		return 2
	}
	// A client of its own: no proxy from the environment, no connection kept.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	fmt.Fprintf(stdout, "%s: %s %s", target, resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// adminURL is the URL of path on the daemon's admin endpoints: admin.listen, else
// ingest.http.listen; an unspecified or wildcard host is dialled on loopback.
func adminURL(cfg config.Config, path string) (string, error) {
	listen := cfg.Admin.Listen
	if listen == "" {
		listen = cfg.Ingest.HTTP.Listen
	}
	if listen == "" {
		return "", errors.New("no admin endpoint: admin.listen and ingest.http.listen are both empty")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w", listen, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
