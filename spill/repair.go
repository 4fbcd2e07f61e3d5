package spill

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// RepairResult says what Repair did.
type RepairResult struct {
	Before      *Report  // the directory before the repair
	Rewritten   []string // segments rewritten without their damage
	Truncated   []string // segments whose damaged tail was cut
	Broken      []string // the .broken copies kept of every file changed
	Removed     []string // stale segments and leftover temporary files
	MetaRebuilt bool
	Records     int    // untrimmed records kept
	LostRecords uint64 // the losses now recorded in the log, as gap frames
	LostBytes   uint64
}

// Repair makes a damaged spill directory intact again while keeping every intact record. Each
// file it changes is first copied to NAME.broken (NAME.N.broken if that exists). A segment
// whose only damage is its tail is truncated after its last valid record and fsynced; any
// other damaged segment is rewritten (NAME.tmp, fsync, rename, directory fsync) with its valid
// frames byte for byte, the damaged regions left out and a gap frame in their place recording
// what was lost, so the losses stay counted and the directory then verifies. Foreign segments
// are renamed to .broken, stale segments and temporary files removed, and an invalid meta file
// rebuilt as Open would. Repair takes the directory's lock: it fails with ErrLocked while a Log
// has it open. Options: WithFS, WithLogger, WithRand, WithSourceID.
func Repair(dir string, opts ...Option) (*RepairResult, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	lock, err := o.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spill: lock %s: %w", dir, err)
	}
	defer lock.Close()
	ds, err := scanDir(o.fs, dir)
	if err != nil {
		return nil, fmt.Errorf("spill: repair %s: %w", dir, err)
	}
	res := &RepairResult{Before: ds.report(o.fs), LostRecords: ds.lostRecords, LostBytes: ds.lostBytes}
	rp := &repairer{o: &o, dir: dir, res: res}

	for _, name := range ds.stray {
		if err := o.fs.Remove(filepath.Join(dir, name)); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, name)
	}
	for _, seg := range ds.stale {
		if err := o.fs.Remove(seg.path); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, seg.name)
	}
	for _, seg := range ds.foreign {
		to, err := rp.brokenName(seg.name)
		if err != nil {
			return res, err
		}
		if err := o.fs.Rename(seg.path, filepath.Join(dir, to)); err != nil {
			return res, err
		}
		res.Broken = append(res.Broken, to)
	}

	m := ds.meta
	if ds.metaErr != nil && (len(ds.segs) > 0 || !errors.Is(ds.metaErr, fs.ErrNotExist)) {
		if m, err = rp.rebuildMeta(ds); err != nil {
			return res, err
		}
	}

	expOrd, expPos := m.headOrd, m.headPos
	for i, seg := range ds.segs {
		last := i == len(ds.segs)-1
		needGap := seg.hasFrames && (seg.firstOrd > expOrd || seg.firstPos > expPos)
		tailOnly := len(seg.damage) == 1 && seg.damage[0].Tail && last
		switch {
		case seg.hdrErr == nil && !needGap && len(seg.damage) == 0:
		case seg.hdrErr == nil && !needGap && tailOnly:
			if err := rp.truncate(seg); err != nil {
				return res, err
			}
		default:
			if err := rp.rewrite(seg, m.sourceID, expOrd, expPos); err != nil {
				return res, err
			}
		}
		if seg.hasFrames {
			expOrd, expPos = seg.endOrd, seg.endPos
		}
		n, _ := seg.pending()
		res.Records += n
	}
	if len(res.Broken) > 0 || len(res.Removed) > 0 {
		if err := o.fs.SyncDir(dir); err != nil {
			return res, writeErr("sync", dir, err)
		}
	}
	return res, nil
}

type repairer struct {
	o   *options
	dir string
	res *RepairResult
}

// brokenName returns a free name for the .broken copy of name.
func (rp *repairer) brokenName(name string) (string, error) { return brokenName(rp.o.fs, rp.dir, name) }

// brokenName returns a free name in dir for the .broken copy of name: NAME.broken, or
// NAME.N.broken if that exists.
func brokenName(fsys FS, dir, name string) (string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, n := range names {
		taken[n] = true
	}
	cand := name + brokenExt
	for i := 1; taken[cand]; i++ {
		cand = fmt.Sprintf("%s.%d%s", name, i, brokenExt)
	}
	return cand, nil
}

// keepBroken copies a file to its .broken name and fsyncs the copy and the directory.
func (rp *repairer) keepBroken(name string) error {
	to, err := rp.brokenName(name)
	if err != nil {
		return err
	}
	src, err := rp.o.fs.OpenFile(filepath.Join(rp.dir, name), os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	dstPath := filepath.Join(rp.dir, to)
	dst, err := rp.o.fs.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return writeErr("create", dstPath, err)
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, rerr := src.ReadAt(buf, off)
		if n > 0 {
			if _, err := dst.WriteAt(buf[:n], off); err != nil {
				dst.Close()
				rp.o.fs.Remove(dstPath)
				return writeErr("write", dstPath, err)
			}
			off += int64(n)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			dst.Close()
			rp.o.fs.Remove(dstPath)
			return rerr
		}
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return writeErr("sync", dstPath, err)
	}
	if err := dst.Close(); err != nil {
		return writeErr("close", dstPath, err)
	}
	// The copy's name too, before the original is changed: a crash of the machine in between
	// would otherwise keep neither the damaged bytes nor their copy.
	if err := rp.o.fs.SyncDir(rp.dir); err != nil {
		return writeErr("sync", rp.dir, err)
	}
	rp.res.Broken = append(rp.res.Broken, to)
	return nil
}

// truncate cuts a segment after its last valid frame, keeping a .broken copy.
func (rp *repairer) truncate(seg *segment) error {
	if err := rp.keepBroken(seg.name); err != nil {
		return err
	}
	f, err := rp.o.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(seg.validEnd); err != nil {
		return writeErr("truncate", seg.path, err)
	}
	if err := f.Sync(); err != nil {
		return writeErr("sync", seg.path, err)
	}
	rp.res.Truncated = append(rp.res.Truncated, seg.name)
	rp.o.logger.Info().Str("segment", seg.name).Int64("offset", seg.validEnd).Msg("repair: damaged tail cut")
	return nil
}

// rewrite replaces a segment with a fresh header and its valid frames, a gap frame standing in
// for each loss (relative to expOrd/expPos, what the previous segment left off at).
func (rp *repairer) rewrite(seg *segment, sourceID string, expOrd, expPos uint64) error {
	if err := rp.keepBroken(seg.name); err != nil {
		return err
	}
	src, err := rp.o.fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := seg.path + tmpExt
	dst, err := rp.o.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return writeErr("create", tmp, err)
	}
	fail := func(err error) error {
		dst.Close()
		rp.o.fs.Remove(tmp)
		return err
	}
	out := encodeSegmentHeader(seg.index, sourceID)
	var off int64
	flush := func() error {
		if _, err := dst.WriteAt(out, off); err != nil {
			return writeErr("write", tmp, err)
		}
		off += int64(len(out))
		out = out[:0]
		return nil
	}
	var lastSeq uint64
	if seg.size > segmentHeaderSize {
		sc := newScanner(src, startState(), seg.size, defaultWindow, false)
		for {
			f, _, _, ok := sc.next()
			if !ok {
				if sc.err != nil {
					return fail(sc.err)
				}
				break
			}
			if f.ord > expOrd || f.pos > expPos {
				out = appendGap(out, lastSeq, expOrd, expPos, f.ord-expOrd, f.pos-expPos)
			}
			out = appendFrame(out, f.typ, f.seq, f.ord, f.pos, f.payload)
			if f.typ == typeRecord {
				lastSeq = f.seq
			}
			expOrd, expPos = sc.st.nextOrd, sc.st.nextPos
			if len(out) >= 1<<20 {
				if err := flush(); err != nil {
					return fail(err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(writeErr("sync", tmp, err))
	}
	if err := dst.Close(); err != nil {
		rp.o.fs.Remove(tmp)
		return writeErr("close", tmp, err)
	}
	if err := rp.o.fs.Rename(tmp, seg.path); err != nil {
		rp.o.fs.Remove(tmp)
		return writeErr("rename", seg.path, err)
	}
	if err := rp.o.fs.SyncDir(rp.dir); err != nil {
		return writeErr("sync", rp.dir, err)
	}
	rp.res.Rewritten = append(rp.res.Rewritten, seg.name)
	rp.o.logger.Info().Str("segment", seg.name).Int("damaged_regions", len(seg.damage)).Msg("repair: segment rewritten")
	return nil
}

// rebuildMeta replaces a missing or invalid meta file as Open would, keeping the invalid one as
// meta.broken.
func (rp *repairer) rebuildMeta(ds *dirScan) (meta, error) {
	m, err := rebuiltMeta(ds, rp.o)
	if err != nil {
		return m, err
	}
	if !errors.Is(ds.metaErr, fs.ErrNotExist) {
		to, err := rp.brokenName(metaName)
		if err != nil {
			return m, err
		}
		if err := rp.o.fs.Rename(filepath.Join(rp.dir, metaName), filepath.Join(rp.dir, to)); err != nil {
			return m, err
		}
		rp.res.Broken = append(rp.res.Broken, to)
	}
	if m, err = convertDir(rp.o.fs, rp.dir, ds, m, true); err != nil {
		return m, err
	}
	rp.res.MetaRebuilt = true
	return m, nil
}
