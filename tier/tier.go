package tier

import (
	"errors"

	"github.com/pharos-node/pharos-node/spill"
)

// Record is a record read back from a log: its sequence number and its bytes. It is the spill
// log's own type, so *spill.Log serves as a log of the acknowledged mode with no adapter.
type Record = spill.Record

// Sentinel errors.
var (
	// ErrInvalid is wrapped by every refused constructor argument.
	ErrInvalid = errors.New("tier: invalid argument")
	// ErrRenumber: a Renumber the log cannot do (see MemoryLog.Renumber).
	ErrRenumber = errors.New("tier: cannot renumber")
)
