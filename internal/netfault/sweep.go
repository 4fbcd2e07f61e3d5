package netfault

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Sweep removes every namespace, host link and host table with the package's prefix whose
// owner (the test binary that made it) no longer runs, and the package's unreachable routes
// whose link is gone, and returns how many it removed. Objects of a running test binary are
// left alone.
func Sweep() (int, error) {
	removed := 0
	var errs []error

	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("netfault: list namespaces: %w", err)
	}
	for _, e := range entries {
		if owner, ok := ownerOf(e.Name(), nsPrefix, "-"); ok && !running(owner) {
			if err := removeObjects(e.Name(), "", ""); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
	}

	links, err := hostLinks()
	if err != nil {
		errs = append(errs, err)
	}
	for name, alias := range links {
		if owner, ok := ownerOf(alias, aliasPrefix, " "); ok && !running(owner) {
			if err := removeObjects("", name, ""); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
	}

	tables, err := hostTables()
	if err != nil {
		errs = append(errs, err)
	}
	for _, table := range tables {
		if owner, ok := ownerOf(table, tablePrefix, "_"); ok && !running(owner) {
			if err := removeObjects("", "", table); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
	}
	// Unreachable routes whose /30 no host address uses any more: their link is gone.
	routes, err := hostRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	addrs, err := hostPrefixes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range routes {
		if !overlapsAny(r, addrs) {
			if err := removeRoute(r); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
	}
	return removed, errors.Join(errs...)
}

// ownerOf reads the owner pid from prefix + PID + sep + ...
func ownerOf(name, prefix, sep string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	pid, _, _ := strings.Cut(rest, sep)
	n, err := strconv.Atoi(pid)
	return n, err == nil && n > 0
}

// running reports whether process pid exists (a reused pid keeps objects alive: harmless,
// the names are unique).
func running(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// hostLinks maps the host's links whose alias has the package's prefix to that alias.
func hostLinks() (map[string]string, error) {
	out, err := output(nil, "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Name  string `json:"ifname"`
		Alias string `json:"ifalias"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netfault: ip -j link show: %w", err)
	}
	found := map[string]string{}
	for _, l := range links {
		if strings.HasPrefix(l.Alias, aliasPrefix) {
			found[l.Name] = l.Alias
		}
	}
	return found, nil
}

// hostTables lists the host's netdev tables with the package's prefix.
func hostTables() ([]string, error) {
	out, err := output(nil, "nft", "-j", "list", "tables", "netdev")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Table *struct {
				Name string `json:"name"`
			} `json:"table"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("netfault: nft -j list tables: %w", err)
	}
	var tables []string
	for _, e := range doc.Nftables {
		if e.Table != nil && strings.HasPrefix(e.Table.Name, tablePrefix) {
			tables = append(tables, e.Table.Name)
		}
	}
	return tables, nil
}
