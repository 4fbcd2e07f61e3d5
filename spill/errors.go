package spill

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("spill: log closed")
	// ErrLocked: another Log (in this process or another) holds the directory.
	ErrLocked = errors.New("spill: directory is in use")
	// ErrFull: the size cap is reached and the overflow policy is Refuse. Nothing was stored;
	// the caller keeps the record in RAM and backs off.
	ErrFull = errors.New("spill: size cap reached")
	// ErrNoSpace: the filesystem is full (ENOSPC, EDQUOT). It comes wrapped in a *WriteError.
	// Nothing already stored is damaged, and writing resumes when space returns.
	ErrNoSpace = errors.New("spill: no space left on device")
	// ErrRecordTooLarge: the record is longer than the maximum record size.
	ErrRecordTooLarge = errors.New("spill: record too large")
	// ErrSeqOrder: Renumber was given a number no untrimmed record has (nor NextSeq), or a new
	// number that would not follow the record before.
	ErrSeqOrder = errors.New("spill: sequence number out of order")
	// ErrTooManySpans: Renumber would keep more renumberings than WithMaxSpans allows while the
	// oldest still cover untrimmed records.
	ErrTooManySpans = errors.New("spill: too many renumberings")
	// ErrNumberingFile: Open cannot fold the acknowledged mode's numbering file of a version-1
	// directory (acked-numbering.json, written by agent.SeqTier) into the meta file: it is
	// unreadable, invalid, or names another source. The directory is left as it was; look at the
	// file (removing it accepts that the untrimmed records are numbered as if it never existed).
	ErrNumberingFile = errors.New("spill: version-1 numbering file cannot be converted")
	// ErrNotSynced: under SyncAlways, Append stored the record (under the number it returns with
	// the error) but its fsync, or the meta file written with it, failed: the record may not
	// survive a crash of the machine.
	ErrNotSynced = errors.New("spill: record stored, not synced")
	// ErrBadOption: an option's value is out of range.
	ErrBadOption = errors.New("spill: bad option")
)

// Reasons found in a CorruptionError's Err (besides io.ErrUnexpectedEOF for a frame cut short by
// the end of its segment, the torn write of a crash).
var (
	// ErrChecksum: a frame's header or payload CRC-32C does not match.
	ErrChecksum = errors.New("spill: checksum mismatch")
	// ErrBadFrame: bytes that cannot start a frame (unknown type, bad length, zeros).
	ErrBadFrame = errors.New("spill: invalid frame")
	// ErrOrder: a frame whose sequence or record number goes back: a stale or foreign frame.
	ErrOrder = errors.New("spill: frame out of order")
	// ErrBadHeader: a segment's header is missing or invalid; its frames are still read.
	ErrBadHeader = errors.New("spill: invalid segment header")
	// ErrMissingRecords: records are missing with no damaged bytes left to show for them (a
	// deleted segment, or a damaged tail of the previous segment).
	ErrMissingRecords = errors.New("spill: records missing")
	// ErrBadMeta: the meta file is missing, unreadable or invalid.
	ErrBadMeta = errors.New("spill: invalid meta file")
)

// CorruptionError locates damage in a spill directory: the segment file, the byte offset in it,
// and the reason (ErrChecksum, ErrBadFrame, ErrOrder, ErrBadHeader, ErrMissingRecords or
// io.ErrUnexpectedEOF).
type CorruptionError struct {
	Segment string // file name within the directory
	Offset  int64
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("spill: corruption in segment %s at offset %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Damage is one damaged region found by a scan, with what it cost.
type Damage struct {
	CorruptionError
	Length      int64  // bytes that could not be read as frames
	LostRecords uint64 // records that were there and are gone
	LostBytes   uint64 // their payload bytes
	Tail        bool   // at the end of the last segment (a torn write): Open cuts it
}

// WriteError is a failed write, sync or file operation on the log. errors.Is(err, ErrNoSpace)
// reports a full filesystem.
type WriteError struct {
	Op   string // "write", "sync", "create", "truncate", "meta"
	Path string
	Err  error
}

func (e *WriteError) Error() string { return "spill: " + e.Op + " " + e.Path + ": " + e.Err.Error() }

func (e *WriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNoSpace) true for ENOSPC and EDQUOT.
func (e *WriteError) Is(target error) bool {
	return target == ErrNoSpace && (errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT))
}

func writeErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var we *WriteError
	if errors.As(err, &we) {
		return err
	}
	return &WriteError{Op: op, Path: path, Err: err}
}

// errShortWrite is the error for a WriteAt that wrote less than asked without saying why.
var errShortWrite = io.ErrShortWrite
