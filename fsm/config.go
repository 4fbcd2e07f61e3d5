package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors callers can branch on with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("fsm: invalid configuration")
	// ErrNotRunning: the manager's process is not (or no longer) registered.
	ErrNotRunning = errors.New("fsm: connection manager not running")
	// ErrMailboxFull: the manager's bounded mailbox refused the record.
	ErrMailboxFull = errors.New("fsm: connection manager mailbox full")
	// ErrEmptyRecord: Deliver was given a record of zero length.
	ErrEmptyRecord = errors.New("fsm: empty record")
	// ErrPeerBusy is wrapped by a Transport's error when it refuses to send
	// now because its peer cannot take more (brain.ErrBusy: the Brain's
	// mailbox over its limit): the manager keeps the connection and the
	// records, and waits in Throttled for its next drain turn.
	ErrPeerBusy = errors.New("fsm: peer busy")
)

// ConfigError names the offending configuration field. It matches
// ErrInvalidConfig with errors.Is.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("fsm: invalid configuration: %s %s", e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// JitterMode selects how the retry delay is drawn from the backoff window.
type JitterMode uint8

const (
	// JitterFull (the default) draws the delay uniformly from [0, backoff),
	// "Full Jitter" as in the original.
	JitterFull JitterMode = iota
	// JitterNone waits exactly the backoff. Only for comparisons (the fleet
	// simulation): a fleet without jitter reconnects in lockstep.
	JitterNone
)

// MaxBackoffExponent caps the exponent of the backoff curve, as the original
// does: backoff = min(MaxBackoff, BaseBackoff * 2^min(attempt, 16)).
const MaxBackoffExponent = 16

// Config holds the tuning knobs. Every duration and count must be positive;
// Validate refuses anything else with a *ConfigError naming the field.
type Config struct {
	// BaseBackoff is the first retry's backoff window (the original's base_ms).
	BaseBackoff time.Duration
	// MaxBackoff caps the exponential growth (max_ms). >= BaseBackoff.
	MaxBackoff time.Duration
	// MaxPending is the backlog (ring plus disk) above which the manager is
	// Throttled, and the ring depth at which buffering spills the ring to disk.
	MaxPending int
	// FlushInterval is how often Streaming drains the ring (flush_interval_ms);
	// it is also the "tick interval" over which records written before a drop
	// are counted as possibly lost (docs/wire.md).
	FlushInterval time.Duration
	// DrainInterval paces Throttled (the original used base_ms for it).
	DrainInterval time.Duration
	// DrainBatch caps the records one flush delivers (disk first, then ring),
	// which is what makes Throttled drain at a pace instead of all at once.
	DrainBatch int
	// ConnectTimeout bounds one Transport.Connect call.
	ConnectTimeout time.Duration
	// DeliverTimeout bounds one Transport.Deliver (or DeliverBatch) call.
	DeliverTimeout time.Duration
	// DropLogInterval is the minimum time between two log lines about
	// dropped records (their count is always in the metrics).
	DropLogInterval time.Duration
	// ProbeInterval, with a transport that is a Prober, is about how often
	// Disconnected asks whether the peer is reachable again while its retry
	// is further away (drawn from [ProbeInterval/2, 3·ProbeInterval/2)).
	// Zero switches probes off.
	ProbeInterval time.Duration
	// ProbeSpread: once a probe finds the peer reachable, the retry is
	// drawn again from [0, min(remaining wait, ProbeSpread)).
	ProbeSpread time.Duration
	// Jitter selects full jitter (default) or none.
	Jitter JitterMode
	// Delivery selects the unacknowledged modes (the zero value: payload,
	// term and subject, which differ only in the transport) or the
	// acknowledged mode of docs/wire.md.
	Delivery DeliveryMode
	// Acked tunes the acknowledged mode; it is validated only when Delivery
	// is DeliveryAcked.
	Acked AckedConfig
	// Confirm tunes the delivery confirmations of the unacknowledged modes;
	// it is used only with a Transport that is a Confirmer.
	Confirm ConfirmConfig
}

// ConfirmConfig tunes delivery confirmations (docs/design.md, "Delivery
// confirmations"): a round trip through the peer's runtime, ordered after
// every record delivered before it, tells that those records reached the
// peer process's mailbox. Records stay held (ring, disk, or the
// Unconfirmed tier) until a round confirms them.
type ConfirmConfig struct {
	// Interval is the longest a delivered record waits for a round trip to
	// start. Zero switches confirmations off: records are released as they
	// are written, and what was written in the last FlushInterval before a
	// drop is counted as possibly lost.
	Interval time.Duration
	// Records: a round trip starts once this many delivered records wait
	// for one.
	Records int
	// MaxUnconfirmed bounds the records delivered and not yet confirmed;
	// at the bound, delivery waits for confirmations.
	MaxUnconfirmed int
	// Timeout: a round trip that has not completed after this long means
	// the peer is alive but not taking signals (suspended): the
	// connection is taken as lost.
	Timeout time.Duration
	// ResendUnconfirmed: at a drop, the records not confirmed are resent
	// after the reconnect (at least once: duplicates only of records that
	// had reached the peer's mailbox) instead of being counted as possibly
	// lost (at most once).
	ResendUnconfirmed bool
}

// DefaultConfirmConfig returns a round trip every 20 ms or 2,000 records,
// at most 100,000 records unconfirmed, a 30 s timeout, and resending what
// a drop left unconfirmed.
func DefaultConfirmConfig() ConfirmConfig {
	return ConfirmConfig{Interval: 20 * time.Millisecond, Records: 2_000, MaxUnconfirmed: 100_000, Timeout: 30 * time.Second, ResendUnconfirmed: true}
}

// Enabled reports whether confirmations are on.
func (c ConfirmConfig) Enabled() bool { return c.Interval > 0 }

// Validate returns a *ConfigError (Field "Confirm.<name>") for a negative
// value, or, with confirmations on, a zero one.
func (c ConfirmConfig) Validate() error {
	if c.Interval < 0 {
		return &ConfigError{Field: "Confirm.Interval", Reason: fmt.Sprintf("must not be negative, got %v", c.Interval)}
	}
	if !c.Enabled() {
		return nil
	}
	if c.Records <= 0 {
		return &ConfigError{Field: "Confirm.Records", Reason: fmt.Sprintf("must be positive, got %d", c.Records)}
	}
	if c.MaxUnconfirmed < c.Records {
		return &ConfigError{Field: "Confirm.MaxUnconfirmed", Reason: fmt.Sprintf("must be at least Confirm.Records (%d), got %d", c.Records, c.MaxUnconfirmed)}
	}
	if c.Timeout <= 0 {
		return &ConfigError{Field: "Confirm.Timeout", Reason: fmt.Sprintf("must be positive, got %v", c.Timeout)}
	}
	return nil
}

// DeliveryMode selects how the manager delivers records.
type DeliveryMode uint8

const (
	// DeliveryUnacked is the default: records go through Transport (or
	// BatchTransport) with no receipt; what was written in the last
	// FlushInterval before a drop is counted as possibly lost.
	DeliveryUnacked DeliveryMode = iota
	// DeliveryAcked numbers every record, sends pharos_batch messages
	// through an AckTransport with a window in flight, and keeps each
	// record in the SeqLog until a cumulative pharos_ack covers it.
	DeliveryAcked
)

// String names the mode as in configuration files.
func (m DeliveryMode) String() string {
	switch m {
	case DeliveryUnacked:
		return "unacked"
	case DeliveryAcked:
		return "acked"
	default:
		return fmt.Sprintf("delivery(%d)", uint8(m))
	}
}

// AckedConfig tunes the acknowledged mode.
type AckedConfig struct {
	// BatchSize is the most records one pharos_batch carries (N).
	BatchSize int
	// BatchDelay is how long a batch that is not full may wait for more
	// records before it is sent anyway (T).
	BatchDelay time.Duration
	// Window is the most batches sent and not yet fully acknowledged.
	Window int
	// AckTimeout: with batches (or the resynchronisation probe) in flight
	// and no acknowledgement progress for this long, the Brain is taken as
	// lost (alive but stuck): the manager disconnects, backs off,
	// reconnects and resends from the oldest unacknowledged record.
	AckTimeout time.Duration
}

// DefaultAckedConfig returns N = 1,000 records, T = 10 ms, a window of 8
// batches and a 30 s acknowledgement timeout.
func DefaultAckedConfig() AckedConfig {
	return AckedConfig{BatchSize: 1_000, BatchDelay: 10 * time.Millisecond, Window: 8, AckTimeout: 30 * time.Second}
}

// Validate returns a *ConfigError (Field "Acked.<name>") for the first
// field that is zero or negative.
func (a AckedConfig) Validate() error {
	if a.BatchSize <= 0 {
		return &ConfigError{Field: "Acked.BatchSize", Reason: fmt.Sprintf("must be positive, got %d", a.BatchSize)}
	}
	if a.BatchDelay <= 0 {
		return &ConfigError{Field: "Acked.BatchDelay", Reason: fmt.Sprintf("must be positive, got %v", a.BatchDelay)}
	}
	if a.Window <= 0 {
		return &ConfigError{Field: "Acked.Window", Reason: fmt.Sprintf("must be positive, got %d", a.Window)}
	}
	if a.AckTimeout <= 0 {
		return &ConfigError{Field: "Acked.AckTimeout", Reason: fmt.Sprintf("must be positive, got %v", a.AckTimeout)}
	}
	return nil
}

// DefaultConfig returns the values the node starts with unless configured:
// 1 s base, 60 s cap, 10,000 pending, 100 ms flush, 100 ms drain interval,
// DrainBatch = 1,000, 5 s timeouts, one drop log line per 10 s, a probe
// about every second while disconnected and a 5 s spread after one finds
// the peer back, the unacknowledged delivery modes with
// DefaultConfirmConfig, and DefaultAckedConfig for the acknowledged one.
func DefaultConfig() Config {
	return Config{
		BaseBackoff:     time.Second,
		MaxBackoff:      time.Minute,
		MaxPending:      10_000,
		FlushInterval:   100 * time.Millisecond,
		DrainInterval:   100 * time.Millisecond,
		DrainBatch:      1_000,
		ConnectTimeout:  5 * time.Second,
		DeliverTimeout:  5 * time.Second,
		DropLogInterval: 10 * time.Second,
		ProbeInterval:   time.Second,
		ProbeSpread:     5 * time.Second,
		Jitter:          JitterFull,
		Delivery:        DeliveryUnacked,
		Acked:           DefaultAckedConfig(),
		Confirm:         DefaultConfirmConfig(),
	}
}

// Validate returns a *ConfigError for the first field that is zero,
// negative or inconsistent.
func (c Config) Validate() error {
	durations := []struct {
		name  string
		value time.Duration
	}{
		{"BaseBackoff", c.BaseBackoff},
		{"MaxBackoff", c.MaxBackoff},
		{"FlushInterval", c.FlushInterval},
		{"DrainInterval", c.DrainInterval},
		{"ConnectTimeout", c.ConnectTimeout},
		{"DeliverTimeout", c.DeliverTimeout},
		{"DropLogInterval", c.DropLogInterval},
	}
	for _, d := range durations {
		if d.value <= 0 {
			return &ConfigError{Field: d.name, Reason: fmt.Sprintf("must be positive, got %v", d.value)}
		}
	}
	if c.ProbeInterval < 0 {
		return &ConfigError{Field: "ProbeInterval", Reason: fmt.Sprintf("must not be negative, got %v", c.ProbeInterval)}
	}
	if c.ProbeInterval > 0 && c.ProbeSpread <= 0 {
		return &ConfigError{Field: "ProbeSpread", Reason: fmt.Sprintf("must be positive with probes on, got %v", c.ProbeSpread)}
	}
	if c.MaxBackoff < c.BaseBackoff {
		return &ConfigError{Field: "MaxBackoff", Reason: fmt.Sprintf("must be >= BaseBackoff (%v), got %v", c.BaseBackoff, c.MaxBackoff)}
	}
	if c.MaxPending <= 0 {
		return &ConfigError{Field: "MaxPending", Reason: fmt.Sprintf("must be positive, got %d", c.MaxPending)}
	}
	if c.DrainBatch <= 0 {
		return &ConfigError{Field: "DrainBatch", Reason: fmt.Sprintf("must be positive, got %d", c.DrainBatch)}
	}
	if c.Jitter != JitterFull && c.Jitter != JitterNone {
		return &ConfigError{Field: "Jitter", Reason: fmt.Sprintf("unknown mode %d", c.Jitter)}
	}
	switch c.Delivery {
	case DeliveryUnacked:
		return c.Confirm.Validate()
	case DeliveryAcked:
		return c.Acked.Validate()
	default:
		return &ConfigError{Field: "Delivery", Reason: fmt.Sprintf("unknown mode %d", c.Delivery)}
	}
}

// BackoffDelay is the deterministic backoff for the given number of failed
// attempts: min(MaxBackoff, BaseBackoff * 2^min(attempt, 16)). A negative
// attempt counts as zero; the multiplication never overflows.
func BackoffDelay(c Config, attempt int) time.Duration {
	exponent := min(max(attempt, 0), MaxBackoffExponent)
	if c.BaseBackoff <= 0 {
		return 0
	}
	if c.BaseBackoff > c.MaxBackoff>>exponent {
		return c.MaxBackoff
	}
	return min(c.BaseBackoff<<exponent, c.MaxBackoff)
}

// Rand is the random source for jitter; *math/rand/v2.Rand satisfies it.
type Rand interface {
	// Int64N returns a uniform value in [0, n); n > 0.
	Int64N(n int64) int64
}

// JitteredDelay is the retry delay for the given attempt: with JitterFull a
// uniform draw from [0, BackoffDelay) ("Full Jitter"), with JitterNone the
// backoff itself. It never exceeds MaxBackoff.
func JitteredDelay(c Config, attempt int, rnd Rand) time.Duration {
	backoff := BackoffDelay(c, attempt)
	if c.Jitter == JitterNone || backoff <= 0 {
		return backoff
	}
	return time.Duration(rnd.Int64N(int64(backoff)))
}
