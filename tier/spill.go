package tier

import "github.com/pharos-node/pharos-node/spill"

// Spill is the disk tier of the unacknowledged modes: a *spill.Log behind the connection
// manager's seam (fsm.Spill), read through the log's cursor and trimmed as delivered (or, with
// delivery confirmations, as confirmed).
type Spill struct {
	log *spill.Log
}

// NewSpill wraps l, which stays the caller's to close.
func NewSpill(l *spill.Log) *Spill { return &Spill{log: l} }

// Log is the wrapped log.
func (s *Spill) Log() *spill.Log { return s.log }

// Append stores rec after everything on disk.
func (s *Spill) Append(rec []byte) error {
	_, err := s.log.Append(rec)
	return err
}

// Read appends up to max records after the cursor to dst, oldest first. Their Data stays valid
// until they are trimmed.
func (s *Spill) Read(dst []Record, max int) ([]Record, error) { return s.log.Read(dst, max) }

// Rewind moves the cursor back to the oldest untrimmed record.
func (s *Spill) Rewind() { s.log.Rewind() }

// Trim discards every record numbered throughSeq or less.
func (s *Spill) Trim(throughSeq uint64) error { return s.log.Trim(throughSeq) }

// Len is the number of untrimmed records. Safe for concurrent use.
func (s *Spill) Len() int { return s.log.Len() }

// Bytes is the size of the untrimmed records. Safe for concurrent use.
func (s *Spill) Bytes() int64 { return s.log.Bytes() }
