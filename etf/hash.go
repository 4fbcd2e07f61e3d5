package etf

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/big"
	"slices"
)

// Map keys must be distinct, and the decoder checks it in time linear in the input: while it decodes a
// map key it also computes the key's hash, bottom-up, so every byte is hashed once however deeply maps
// nest inside keys. Keys whose hashes collide are then compared exactly, as Erlang terms, with Equal.
// Leaves are hashed with hash/maphash under a seed drawn per decode call, so an attacker cannot
// precompute colliding keys. The hash of a term depends only on its value, never on which of several
// encodings carried it (ATOM_EXT or SMALL_ATOM_UTF8_EXT, STRING_EXT or LIST_EXT, ...).

const (
	kindInt uint64 = iota + 0x9e3779b97f4a7c15
	kindBig
	kindFloat
	kindAtom
	kindBinary
	kindBitBinary
	kindTuple
	kindList
	kindMap
	kindPid
	kindPort
	kindRef
	kindExport
	kindFun
)

const (
	hashNil   uint64 = 0x2545f4914f6cdd1d // the hash of [] and of a proper list's end
	listPrime uint64 = 0x100000001b3
)

// mix folds x into h (a 64-bit finalizer in the style of splitmix64).
func mix(h, x uint64) uint64 {
	h ^= x + 0x9e3779b97f4a7c15 + h<<6 + h>>2
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// listHasher hashes a list as sum(mix(e_i) * P^i) + tail * P^n, so that a list given as elements plus a
// list tail hashes the same as the merged list.
type listHasher struct {
	h, pow uint64
}

func (l *listHasher) add(eh uint64) {
	if l.pow == 0 {
		l.pow = 1
	}
	l.h += mix(kindList, eh) * l.pow
	l.pow *= listPrime
}

func (l *listHasher) end(tailHash uint64) uint64 {
	if l.pow == 0 {
		l.pow = 1
	}
	return l.h + tailHash*l.pow
}

func (s *decodeState) seedOnce() maphash.Seed {
	if !s.seeded {
		s.seed, s.seeded = maphash.MakeSeed(), true
	}
	return s.seed
}

func (s *decodeState) hashBytes(kind uint64, b []byte) uint64 {
	return mix(kind, maphash.Bytes(s.seedOnce(), b))
}

func (s *decodeState) hashString(str string) uint64 {
	return maphash.String(s.seedOnce(), str)
}

func (s *decodeState) hashAtom(a Atom) uint64 { return mix(kindAtom, s.hashString(string(a))) }

func (s *decodeState) hashInt(x int64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(x))
	return s.hashBytes(kindInt, b[:])
}

func (s *decodeState) hashNumber(v any) uint64 {
	switch x := v.(type) {
	case int64:
		return s.hashInt(x)
	case *big.Int:
		h := s.hashBytes(kindBig, x.Bytes())
		return mix(h, uint64(x.Sign()+1))
	}
	return 0
}

func (s *decodeState) hashFloat(f float64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
	return s.hashBytes(kindFloat, b[:])
}

func (s *decodeState) hashPid(p Pid) uint64 {
	h := mix(kindPid, s.hashString(string(p.Node)))
	return mix(mix(h, uint64(p.ID)<<32|uint64(p.Serial)), uint64(p.Creation))
}

func (s *decodeState) hashRef(r Ref) uint64 {
	h := mix(mix(kindRef, s.hashString(string(r.Node))), uint64(r.Creation))
	h = mix(h, uint64(r.Len))
	for _, w := range r.Words() {
		h = mix(h, uint64(w))
	}
	return h
}

// hasDuplicateKey reports whether two keys of m are equal terms; hashes holds each key's hash.
func hasDuplicateKey(m Map, hashes []uint64, maxDepth int) bool {
	n := len(m)
	if n <= 8 {
		for i := 1; i < n; i++ {
			for j := 0; j < i; j++ {
				if hashes[i] == hashes[j] && equalDepth(m[i].Key, m[j].Key, maxDepth) {
					return true
				}
			}
		}
		return false
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case hashes[a] < hashes[b]:
			return -1
		case hashes[a] > hashes[b]:
			return 1
		}
		return 0
	})
	for i := 0; i < n; {
		j := i + 1
		for j < n && hashes[order[j]] == hashes[order[i]] {
			j++
		}
		for a := i; a < j; a++ {
			for b := i; b < a; b++ {
				if equalDepth(m[order[a]].Key, m[order[b]].Key, maxDepth) {
					return true
				}
			}
		}
		i = j
	}
	return false
}

// Equal reports whether a and b are the same Erlang term, as =:= would say after both were encoded:
// an int and an int64 and a *big.Int of the same value are equal, so are a string and a []byte with the
// same bytes, a List and an equal []any, an Atom and a gen.Atom, a Pid and the gen.PID that maps to it;
// Maps are equal whatever the order of their entries. Floats compare by bit pattern, so 0.0 and -0.0
// differ, as they do for =:= since OTP 27 (and for map keys in every release). Values that cannot be
// encoded are equal to nothing.
func Equal(a, b any) bool { return equalDepth(a, b, equalMaxDepth) }

const equalMaxDepth = 1 << 16

func equalDepth(a, b any, maxDepth int) bool {
	enc := encoder{maxDepth: max(maxDepth, DefaultMaxDepth), canonical: true}
	ea, err := enc.term(nil, a, 0)
	if err != nil {
		return false
	}
	eb, err := enc.term(nil, b, 0)
	if err != nil {
		return false
	}
	return bytes.Equal(ea, eb)
}
