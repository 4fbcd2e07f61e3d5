package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go writes it ("100ms", "1m30s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as Go does, without zero trailing units ("1m", not "1m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d *Duration) parse(text string) error {
	t := strings.TrimSpace(text)
	v, err := time.ParseDuration(t)
	if err != nil {
		if _, numErr := strconv.ParseFloat(t, 64); numErr == nil && t != "0" {
			return fmt.Errorf("%q has no unit: write it as %ss, %sms or %sm", text, t, t, t)
		}
		return fmt.Errorf("not a duration (like 250ms or 1m): %q", text)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.parse(n.Value) }

// ByteSize is a size in bytes, written as an integer or with a unit: 512KiB, 64MiB, 1GiB, 10MB.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1_000}, {"MB", 1_000_000}, {"GB", 1_000_000_000}, {"TB", 1_000_000_000_000},
	{"B", 1},
}

func (b ByteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b >= ByteSize(u.factor) && int64(b)%u.factor == 0 && int64(b)/u.factor < 1024 {
			return strconv.FormatInt(int64(b)/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func (b *ByteSize) parse(text string) error {
	t := strings.TrimSpace(text)
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			factor, t = u.factor, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("not a size (like 65536, 512KiB or 64MiB): %q", text)
	}
	*b = ByteSize(n * factor)
	return nil
}

// UnmarshalYAML reads a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error { return b.parse(n.Value) }

// MarshalYAML writes the duration as Go writes it ("100ms").
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalYAML writes the size with its unit where it has a whole one ("64MiB").
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
