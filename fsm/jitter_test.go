package fsm

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestBackoffDelayCurve(t *testing.T) {
	cfg := testConfig() // base 100 ms, cap 1.6 s
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{-3, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, 1600 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{1 << 40, 1600 * time.Millisecond},
	} {
		if got := BackoffDelay(cfg, tc.attempt); got != tc.want {
			t.Errorf("BackoffDelay(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
	// The exponent stops at 16: with a huge cap, 2^17 is never used.
	huge := Config{BaseBackoff: time.Millisecond, MaxBackoff: math.MaxInt64}
	if got, want := BackoffDelay(huge, 40), time.Millisecond<<16; got != want {
		t.Errorf("exponent not capped: %v, want %v", got, want)
	}
	// base * 2^16 would overflow int64: the cap wins, no wrap-around.
	overflow := Config{BaseBackoff: 1 << 50, MaxBackoff: math.MaxInt64}
	if got := BackoffDelay(overflow, 16); got != math.MaxInt64 {
		t.Errorf("overflow: %v", got)
	}
}

// TestJitterIsUniform: 200,000 draws for one attempt, checked against the
// uniform distribution on [0, backoff) by chi-square (20 bins) and by
// Kolmogorov-Smirnov, both at the 0.1% level, with a fixed seed.
func TestJitterIsUniform(t *testing.T) {
	cfg := testConfig()
	const attempt, n, bins = 3, 200_000, 20
	backoff := BackoffDelay(cfg, attempt) // 800 ms
	rnd := rand.New(rand.NewPCG(20261126, 7))
	samples := make([]float64, n)
	var counts [bins]int
	for i := range samples {
		d := JitteredDelay(cfg, attempt, rnd)
		if d < 0 || d >= backoff {
			t.Fatalf("delay %v outside [0, %v)", d, backoff)
		}
		u := float64(d) / float64(backoff)
		samples[i] = u
		counts[int(u*bins)]++
	}
	expected := float64(n) / bins
	chi2 := 0.0
	for _, c := range counts {
		diff := float64(c) - expected
		chi2 += diff * diff / expected
	}
	const chi2Critical = 43.82 // chi-square, 19 degrees of freedom, p = 0.001
	if chi2 > chi2Critical {
		t.Errorf("chi-square %.2f > %.2f: not uniform", chi2, chi2Critical)
	}
	sort.Float64s(samples)
	ks := 0.0
	for i, u := range samples {
		ks = max(ks, math.Abs(float64(i+1)/n-u), math.Abs(u-float64(i)/n))
	}
	ksCritical := 1.949 / math.Sqrt(n) // p = 0.001
	if ks > ksCritical {
		t.Errorf("Kolmogorov-Smirnov D %.5f > %.5f: not uniform", ks, ksCritical)
	}
	t.Logf("%d draws over [0, %v): chi-square %.2f (critical %.2f), KS D %.5f (critical %.5f)",
		n, backoff, chi2, chi2Critical, ks, ksCritical)
}

// TestJitterNeverExceedsCap over random configurations, attempts and
// sources, including the extreme draws.
func TestJitterNeverExceedsCap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		base := time.Duration(rapid.Int64Range(1, int64(time.Hour)).Draw(rt, "base"))
		cfg := Config{
			BaseBackoff: base,
			MaxBackoff:  base + time.Duration(rapid.Int64Range(0, math.MaxInt64-int64(base)).Draw(rt, "extra")),
		}
		attempt := rapid.IntRange(-10, 1000).Draw(rt, "attempt")
		backoff := BackoffDelay(cfg, attempt)
		if backoff <= 0 || backoff > cfg.MaxBackoff {
			rt.Fatalf("backoff %v outside (0, %v]", backoff, cfg.MaxBackoff)
		}
		for _, r := range []Rand{fixedRand{0}, fixedRand{0.999999999}, rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 0))} {
			if d := JitteredDelay(cfg, attempt, r); d < 0 || d >= backoff {
				rt.Fatalf("jittered %v outside [0, %v)", d, backoff)
			}
		}
		cfg.Jitter = JitterNone
		if d := JitteredDelay(cfg, attempt, nil); d != backoff {
			rt.Fatalf("no jitter: %v, want %v", d, backoff)
		}
	})
}
