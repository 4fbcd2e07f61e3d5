package node

import (
	"math/bits"
	"strconv"
	"strings"
)

// Flags is the 64-bit capability word exchanged in the distribution handshake (the "DFLAG_*"
// constants of OTP's dist.hrl). Each side announces what it implements; the connection uses the
// intersection, and each side refuses a peer that lacks one of its mandatory flags.
type Flags uint64

// Distribution flags. The comment on each says what it means and its status in OTP 25..29.
const (
	// FlagPublished: the node appears in nodes() on the peer. Pharos NEVER sets it: it is hidden.
	FlagPublished Flags = 0x1
	// FlagAtomCache: obsolete atom cache (pre-R9); never set.
	FlagAtomCache Flags = 0x2
	// FlagExtendedReferences: references with up to 3 (5 with V4_NC) id words. Mandatory since OTP 25.
	FlagExtendedReferences Flags = 0x4
	// FlagDistMonitor: monitors by pid (MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT). Implemented.
	FlagDistMonitor Flags = 0x8
	// FlagFunTags: FUN_EXT may be sent. Mandatory since OTP 25 (we never send funs).
	FlagFunTags Flags = 0x10
	// FlagDistMonitorName: monitors by registered name. Implemented.
	FlagDistMonitorName Flags = 0x20
	// FlagHiddenAtomCache: atom cache on hidden connections (obsolete); never set.
	FlagHiddenAtomCache Flags = 0x40
	// FlagNewFunTags: NEW_FUN_EXT. Mandatory since OTP 25.
	FlagNewFunTags Flags = 0x80
	// FlagExtendedPidsPorts: NEW_PID_EXT / NEW_PORT_EXT framing. Mandatory since OTP 25.
	FlagExtendedPidsPorts Flags = 0x100
	// FlagExportPtrTag: EXPORT_EXT. Mandatory since OTP 25.
	FlagExportPtrTag Flags = 0x200
	// FlagBitBinaries: BIT_BINARY_EXT. Mandatory since OTP 25.
	FlagBitBinaries Flags = 0x400
	// FlagNewFloats: NEW_FLOAT_EXT (IEEE 754 binary64). Mandatory since OTP 25.
	FlagNewFloats Flags = 0x800
	// FlagUnicodeIO: unicode io protocol; harmless, set.
	FlagUnicodeIO Flags = 0x1000
	// FlagDistHdrAtomCache: the distribution header with an atom cache. NOT implemented, never
	// set: both sides then use the pass-through header ('p').
	FlagDistHdrAtomCache Flags = 0x2000
	// FlagSmallAtomTags: SMALL_ATOM_EXT. Set; our decoder reads it.
	FlagSmallAtomTags Flags = 0x4000
	// FlagUTF8Atoms: ATOM_UTF8_EXT / SMALL_ATOM_UTF8_EXT. Mandatory since OTP 25.
	FlagUTF8Atoms Flags = 0x10000
	// FlagMapTag: MAP_EXT. Mandatory since OTP 25.
	FlagMapTag Flags = 0x20000
	// FlagBigCreation: 32-bit creation in pids, ports, refs. Mandatory since OTP 25.
	FlagBigCreation Flags = 0x40000
	// FlagSendSender: SEND_SENDER carries the real sender. Implemented.
	FlagSendSender Flags = 0x80000
	// FlagBigSeqTraceLabels: any term as a sequential-trace label; we ignore traces. Set.
	FlagBigSeqTraceLabels Flags = 0x100000
	// FlagExitPayload: EXIT/EXIT2/MONITOR_P_EXIT carry the reason as payload (PAYLOAD_* ops).
	// Not advertised; the PAYLOAD_* forms are still decoded if they arrive.
	FlagExitPayload Flags = 0x400000
	// FlagFragments: fragmented messages. NOT implemented, never set.
	FlagFragments Flags = 0x800000
	// FlagHandshake23: the OTP 23 handshake ('N' name message, version 6). Mandatory since OTP 25.
	FlagHandshake23 Flags = 0x1000000
	// FlagUnlinkID: the UNLINK_ID / UNLINK_ID_ACK protocol. Mandatory since OTP 26. Implemented.
	FlagUnlinkID Flags = 0x2000000
	// FlagMandatory25Digest: shorthand for all of Mandatory25 (OTP 25+ accept it; OTP 27+ require it).
	FlagMandatory25Digest Flags = 0x4000000
	// FlagSpawn: distributed spawn_request. Not implemented, never set.
	FlagSpawn Flags = 1 << 32
	// FlagNameMe: dynamic node name assigned by the peer. Never set.
	FlagNameMe Flags = 1 << 33
	// FlagV4NC: pids, ports and references with 64-bit ids (v4 node container). Mandatory since
	// OTP 26. Implemented by decoding NEW_PID_EXT/NEWER_REFERENCE_EXT of any width.
	FlagV4NC Flags = 1 << 34
	// FlagAlias: process aliases (ALIAS_SEND). Implemented.
	FlagAlias Flags = 1 << 35
	// FlagLocalExt: LOCAL_EXT terms; internal to a node, never set.
	FlagLocalExt Flags = 1 << 36
	// FlagAltactSig: alternate activation of signals (OTP 27+); not implemented, never set.
	FlagAltactSig Flags = 1 << 37
	// FlagNativeRecords: native record terms (OTP 29); not implemented, never set, so the peer
	// sends tuples.
	FlagNativeRecords Flags = 1 << 38
)

// Mandatory25 is the set OTP 25 and later refuse to connect without.
const Mandatory25 = FlagExtendedReferences | FlagFunTags | FlagExtendedPidsPorts |
	FlagNewFunTags | FlagExportPtrTag | FlagBitBinaries | FlagNewFloats | FlagUTF8Atoms |
	FlagMapTag | FlagBigCreation | FlagHandshake23

// Mandatory is what a Pharos node requires from its peer and what it always announces: the OTP 25
// set plus FlagV4NC and FlagUnlinkID, mandatory since OTP 26 (OTP 29 asks for the same set).
const Mandatory = Mandatory25 | FlagV4NC | FlagUnlinkID

// DefaultFlags is what a Pharos node announces: Mandatory plus the features it really
// implements. It never contains FlagPublished, FlagFragments or FlagDistHdrAtomCache.
const DefaultFlags = Mandatory | FlagMandatory25Digest | FlagDistMonitor | FlagDistMonitorName |
	FlagSendSender | FlagAlias | FlagUnicodeIO | FlagSmallAtomTags | FlagBigSeqTraceLabels

// unsupported flags can never be announced: the node would then receive what it cannot read.
const unsupported = FlagPublished | FlagAtomCache | FlagHiddenAtomCache | FlagDistHdrAtomCache |
	FlagFragments | FlagSpawn | FlagNameMe | FlagExitPayload | FlagLocalExt | FlagAltactSig |
	FlagNativeRecords

// Has reports whether every flag of want is set in f.
func (f Flags) Has(want Flags) bool { return f&want == want }

// expand applies FlagMandatory25Digest: a peer that sets it has every flag of Mandatory25.
func (f Flags) expand() Flags {
	if f&FlagMandatory25Digest != 0 {
		return f | Mandatory25
	}
	return f
}

// Missing returns the flags of want that f lacks (after expanding the OTP 25 digest flag).
func (f Flags) Missing(want Flags) Flags { return want &^ f.expand() }

var flagNames = [...]struct {
	flag Flags
	name string
}{
	{FlagPublished, "PUBLISHED"}, {FlagAtomCache, "ATOM_CACHE"},
	{FlagExtendedReferences, "EXTENDED_REFERENCES"}, {FlagDistMonitor, "DIST_MONITOR"},
	{FlagFunTags, "FUN_TAGS"}, {FlagDistMonitorName, "DIST_MONITOR_NAME"},
	{FlagHiddenAtomCache, "HIDDEN_ATOM_CACHE"}, {FlagNewFunTags, "NEW_FUN_TAGS"},
	{FlagExtendedPidsPorts, "EXTENDED_PIDS_PORTS"}, {FlagExportPtrTag, "EXPORT_PTR_TAG"},
	{FlagBitBinaries, "BIT_BINARIES"}, {FlagNewFloats, "NEW_FLOATS"},
	{FlagUnicodeIO, "UNICODE_IO"}, {FlagDistHdrAtomCache, "DIST_HDR_ATOM_CACHE"},
	{FlagSmallAtomTags, "SMALL_ATOM_TAGS"}, {FlagUTF8Atoms, "UTF8_ATOMS"},
	{FlagMapTag, "MAP_TAG"}, {FlagBigCreation, "BIG_CREATION"},
	{FlagSendSender, "SEND_SENDER"}, {FlagBigSeqTraceLabels, "BIG_SEQTRACE_LABELS"},
	{FlagExitPayload, "EXIT_PAYLOAD"}, {FlagFragments, "FRAGMENTS"},
	{FlagHandshake23, "HANDSHAKE_23"}, {FlagUnlinkID, "UNLINK_ID"},
	{FlagMandatory25Digest, "MANDATORY_25_DIGEST"}, {FlagSpawn, "SPAWN"},
	{FlagNameMe, "NAME_ME"}, {FlagV4NC, "V4_NC"}, {FlagAlias, "ALIAS"},
	{FlagLocalExt, "LOCAL_EXT"}, {FlagAltactSig, "ALTACT_SIG"}, {FlagNativeRecords, "NATIVE_RECORDS"},
}

// String lists the flags by their OTP names, "DIST_MONITOR|UNLINK_ID"; unnamed bits as "bitN".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	rest := f
	for _, fn := range flagNames {
		if f&fn.flag != 0 {
			names = append(names, fn.name)
			rest &^= fn.flag
		}
	}
	for rest != 0 {
		bit := bits.TrailingZeros64(uint64(rest))
		names = append(names, "bit"+strconv.Itoa(bit))
		rest &^= 1 << bit
	}
	return strings.Join(names, "|")
}
