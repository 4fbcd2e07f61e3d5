package main

// pharos-node spill inspect|verify|repair DIR: what is in a spill directory, whether it is
// intact, and a repair that keeps every intact record. The format is docs/spill-format.md.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/spill"
)

const spillDescription = `The format is docs/spill-format.md.

  inspect DIR   what the spill directory holds: segments, records, sequence numbers, source id,
                damaged regions and what they cost. Changes nothing; safe beside a running node.
  verify DIR    exit 0 if the directory is intact, 1 if it is damaged (or unreadable).
  repair DIR    keep every intact record, cut a torn tail, rewrite damaged segments without the
                damage (each changed file is first copied to NAME.broken), rebuild a bad meta
                file. Stop the node first: repair takes the directory's lock. Exit 0 once the
                directory verifies.

The exit codes: 0 ok, 1 problems found or the operation failed, 2 usage.`

// spillFlags are the flags of every spill subcommand.
func spillFlags(name string) (fs *flag.FlagSet, asJSON, verbose *bool) {
	fs = newFlagSet(name)
	asJSON = fs.Bool("json", false, "print the report as JSON")
	verbose = fs.Bool("v", false, "(repair) log each change to stderr")
	return fs, asJSON, verbose
}

// runSpill is `pharos-node spill`; args are what follows "spill".
func runSpill(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(format string, a ...any) int {
		return usageError(stderr, "spill", fmt.Errorf(format, a...))
	}
	if len(args) == 0 {
		return usage("missing subcommand (inspect, verify or repair)")
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help", "help":
		fs, _, _ := spillFlags("spill")
		printHelp(stdout, "spill", fs)
		return 0
	case "inspect", "verify", "repair":
	default:
		return usage("unknown subcommand %q", sub)
	}
	fs, asJSON, verbose := spillFlags("spill " + sub)
	// Flags may come before or after DIR.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(stdout, "spill", fs)
				return 0
			}
			return usage("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return usage("%s takes one directory, got %d arguments", sub, len(pos))
	}
	dir := pos[0]
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "pharos-node spill: %v\n", err)
		return 1
	}

	switch sub {
	case "inspect", "verify":
		rep, err := spill.Inspect(dir)
		if err != nil {
			fmt.Fprintf(stderr, "pharos-node spill %s: %v\n", sub, err)
			return 1
		}
		if *asJSON {
			if err := writeJSON(stdout, reportJSON(rep)); err != nil {
				fmt.Fprintf(stderr, "pharos-node spill: %v\n", err)
				return 1
			}
		} else {
			printReport(stdout, rep)
		}
		if sub == "verify" && !rep.Intact() {
			if !*asJSON {
				fmt.Fprintf(stderr, "pharos-node spill verify: %v\n", rep.Err())
			}
			return 1
		}
		return 0
	default: // repair
		logger := zerolog.Nop()
		if *verbose {
			logger = zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).With().Timestamp().Logger()
		}
		res, err := spill.Repair(dir, spill.WithLogger(&logger))
		if err != nil {
			if errors.Is(err, spill.ErrLocked) {
				fmt.Fprintf(stderr, "pharos-node spill repair: %s is in use: stop the node first\n", dir)
			} else {
				fmt.Fprintf(stderr, "pharos-node spill repair: %v\n", err)
			}
			return 1
		}
		after, verr := spill.Verify(dir)
		if after == nil {
			fmt.Fprintf(stderr, "pharos-node spill repair: verify after repair: %v\n", verr)
			return 1
		}
		if *asJSON {
			out := struct {
				Before      reportView `json:"before"`
				After       reportView `json:"after"`
				Rewritten   []string   `json:"rewritten"`
				Truncated   []string   `json:"truncated"`
				Broken      []string   `json:"broken_copies"`
				Removed     []string   `json:"removed"`
				MetaRebuilt bool       `json:"meta_rebuilt"`
			}{reportJSON(res.Before), reportJSON(after), nonNil(res.Rewritten), nonNil(res.Truncated),
				nonNil(res.Broken), nonNil(res.Removed), res.MetaRebuilt}
			if err := writeJSON(stdout, out); err != nil {
				fmt.Fprintf(stderr, "pharos-node spill: %v\n", err)
				return 1
			}
		} else {
			printRepair(stdout, res, after)
		}
		if verr != nil {
			fmt.Fprintf(stderr, "pharos-node spill repair: still damaged: %v\n", verr)
			return 1
		}
		return 0
	}
}

func printReport(w io.Writer, r *spill.Report) {
	fmt.Fprintf(w, "spill directory  %s\n", r.Dir)
	fmt.Fprintf(w, "source id        %s\n", orDash(r.SourceID))
	switch {
	case r.MetaErr == nil:
		fmt.Fprintf(w, "sequence         next %d, trimmed through %d\n", r.NextSeq, r.TrimmedSeq)
	default:
		fmt.Fprintf(w, "meta file        %v\n", r.MetaErr)
	}
	if r.Records > 0 {
		fmt.Fprintf(w, "records          %d untrimmed, %s, seq %d..%d\n", r.Records, sizeOf(r.Bytes), r.FirstSeq, r.LastSeq)
	} else {
		fmt.Fprintf(w, "records          none untrimmed\n")
	}
	fmt.Fprintf(w, "disk             %d segment(s), %s\n", len(r.Segments), sizeOf(r.DiskBytes))
	if len(r.Damage) > 0 || r.LostRecords > 0 {
		fmt.Fprintf(w, "lost             %d record(s), %s, in %d damaged region(s)", r.LostRecords, sizeOf(int64(r.LostBytes)), len(r.Damage))
		if r.TornBytes > 0 {
			fmt.Fprintf(w, "; %s torn at the end", sizeOf(r.TornBytes))
		}
		fmt.Fprintln(w)
	}
	if len(r.Segments) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "SEGMENT\tSIZE\tRECORDS\tTRIMMED\tFIRST SEQ\tLAST SEQ\tDAMAGED\tHEADER\t")
		for _, s := range r.Segments {
			hdr := "ok"
			if s.HeaderErr != nil {
				hdr = "invalid"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Name, s.Size, s.Records, s.Trimmed, s.FirstSeq, s.LastSeq, s.Damaged, hdr)
		}
		tw.Flush()
	}
	if len(r.Damage) > 0 {
		fmt.Fprintln(w, "\ndamaged regions:")
		for _, d := range r.Damage {
			where := ""
			if d.Tail {
				where = " (torn tail: cut at the next open)"
			}
			fmt.Fprintf(w, "  %s at offset %d: %d bytes, %d record(s) / %s lost: %v%s\n",
				d.Segment, d.Offset, d.Length, d.LostRecords, sizeOf(int64(d.LostBytes)), d.Err, where)
		}
	}
	list := func(label string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(w, "%s %s\n", label, strings.Join(names, ", "))
		}
	}
	fmt.Fprintln(w)
	list("stale segments (removed at the next open):", r.Stale)
	list("foreign segments (ignored):", r.Foreign)
	list("leftover temporary files:", r.Stray)
	list("kept by earlier repairs:", r.Broken)
	list("other files:", r.Other)
	if r.Intact() {
		fmt.Fprintln(w, "status: intact")
	} else {
		fmt.Fprintf(w, "status: DAMAGED (pharos-node spill repair %s keeps every intact record)\n", r.Dir)
	}
}

func printRepair(w io.Writer, res *spill.RepairResult, after *spill.Report) {
	b := res.Before
	if b.Intact() && len(res.Removed) == 0 {
		fmt.Fprintf(w, "%s: intact, nothing to repair (%d records)\n", b.Dir, after.Records)
		return
	}
	fmt.Fprintf(w, "repaired %s\n", b.Dir)
	line := func(label string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(w, "  %-22s %s\n", label, strings.Join(names, ", "))
		}
	}
	line("rewritten:", res.Rewritten)
	line("torn tail cut:", res.Truncated)
	line("copies kept:", res.Broken)
	line("removed:", res.Removed)
	if res.MetaRebuilt {
		fmt.Fprintf(w, "  %-22s %s\n", "meta file rebuilt:", "source id "+after.SourceID)
	}
	fmt.Fprintf(w, "  %-22s %d records kept, %d lost (%s) as counted before the repair\n", "records:", after.Records, b.LostRecords, sizeOf(int64(b.LostBytes)))
	if after.Intact() {
		fmt.Fprintln(w, "status: intact")
	} else {
		fmt.Fprintln(w, "status: STILL DAMAGED")
	}
}

// reportView is the JSON form of a spill.Report.
type reportView struct {
	Dir         string        `json:"dir"`
	Intact      bool          `json:"intact"`
	SourceID    string        `json:"source_id"`
	NextSeq     uint64        `json:"next_seq"`
	TrimmedSeq  uint64        `json:"trimmed_seq"`
	MetaError   string        `json:"meta_error,omitempty"`
	Records     int           `json:"records"`
	Bytes       int64         `json:"bytes"`
	FirstSeq    uint64        `json:"first_seq"`
	LastSeq     uint64        `json:"last_seq"`
	DiskBytes   int64         `json:"disk_bytes"`
	LostRecords uint64        `json:"lost_records"`
	LostBytes   uint64        `json:"lost_bytes"`
	TornBytes   int64         `json:"torn_bytes"`
	Segments    []segmentView `json:"segments"`
	Damage      []damageView  `json:"damage"`
	Stale       []string      `json:"stale_segments"`
	Foreign     []string      `json:"foreign_segments"`
	Stray       []string      `json:"temporary_files"`
	Broken      []string      `json:"broken_copies"`
	Other       []string      `json:"other_files"`
}

type segmentView struct {
	Name        string `json:"name"`
	Index       uint64 `json:"index"`
	Size        int64  `json:"size"`
	Records     int    `json:"records"`
	Trimmed     int    `json:"trimmed"`
	Bytes       int64  `json:"bytes"`
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	SourceID    string `json:"source_id"`
	HeaderError string `json:"header_error,omitempty"`
	Damaged     int    `json:"damaged_regions"`
}

type damageView struct {
	Segment     string `json:"segment"`
	Offset      int64  `json:"offset"`
	Length      int64  `json:"length"`
	LostRecords uint64 `json:"lost_records"`
	LostBytes   uint64 `json:"lost_bytes"`
	TornTail    bool   `json:"torn_tail"`
	Reason      string `json:"reason"`
}

func reportJSON(r *spill.Report) reportView {
	v := reportView{
		Dir: r.Dir, Intact: r.Intact(), SourceID: r.SourceID, NextSeq: r.NextSeq, TrimmedSeq: r.TrimmedSeq,
		Records: r.Records, Bytes: r.Bytes, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, DiskBytes: r.DiskBytes,
		LostRecords: r.LostRecords, LostBytes: r.LostBytes, TornBytes: r.TornBytes,
		Segments: []segmentView{}, Damage: []damageView{},
		Stale: nonNil(r.Stale), Foreign: nonNil(r.Foreign), Stray: nonNil(r.Stray), Broken: nonNil(r.Broken), Other: nonNil(r.Other),
	}
	if r.MetaErr != nil {
		v.MetaError = r.MetaErr.Error()
	}
	for _, s := range r.Segments {
		sv := segmentView{Name: s.Name, Index: s.Index, Size: s.Size, Records: s.Records, Trimmed: s.Trimmed, Bytes: s.Bytes,
			FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, SourceID: s.SourceID, Damaged: s.Damaged}
		if s.HeaderErr != nil {
			sv.HeaderError = s.HeaderErr.Error()
		}
		v.Segments = append(v.Segments, sv)
	}
	for _, d := range r.Damage {
		v.Damage = append(v.Damage, damageView{Segment: d.Segment, Offset: d.Offset, Length: d.Length,
			LostRecords: d.LostRecords, LostBytes: d.LostBytes, TornTail: d.Tail, Reason: d.Err.Error()})
	}
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sizeOf prints a byte count for people.
func sizeOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
