package etf

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// Interop with real BEAM, on the release PHAROS_OTP names (25 by default; CI runs 25, 27 and 29). These
// tests fail, never skip, when Erlang is missing.
//
// TestInteropDecode has Erlang encode every case of corpus_test.go with each term_to_binary option of
// erlOptions and checks that Go decodes all of them to the case's value; each distinct encoding is then
// re-encoded by Go and handed back, and Erlang checks that binary_to_term(Go, [safe]) =:=
// binary_to_term(Erlang). With PHAROS_ETF_WRITE_CORPUS=1 it also adds the encodings (up to 8 KiB) to
// testdata/fuzz/FuzzDecode, the seed corpus TestCorpus and FuzzDecode use without Erlang.
//
// TestInteropEncode has Go encode each case, each goCase and each record, and Erlang check that
// binary_to_term(B, [safe]) =:= the term it builds from the case's expression, and (for the exact
// cases and every record) that the bytes are those of term_to_binary(T, [{minor_version, 2}]).

const writeCorpusEnv = "PHAROS_ETF_WRITE_CORPUS"

// erlString quotes s as an Erlang string literal; non-ASCII characters are written as \x{...}.
func erlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 32 || r > 126:
			fmt.Fprintf(&b, `\x{%x}`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// evalWithData writes terms (one per line, each ending in ".") to a file, and evaluates program in
// Erlang with Cases bound to the file's terms and Eval to a fun that evaluates an expression string.
// It returns the printed lines.
func evalWithData(t *testing.T, rel erltest.Release, lines []string, program string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cases.eterm")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prelude := fmt.Sprintf(`{ok, Cases} = file:consult(%s),
Eval = fun(Src) -> {ok, Toks, _} = erl_scan:string(Src ++ "."), {ok, Es} = erl_parse:parse_exprs(Toks),
  {value, V, _} = erl_eval:exprs(Es, []), V end,
Hex = fun(H) -> binary:decode_hex(list_to_binary(H)) end,
`, erlString(path))
	out := rel.Eval(t, prelude+program)
	var res []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			res = append(res, line)
		}
	}
	return res
}

type erlEncoding struct {
	file string // otpNN-case-opt
	name string
	data []byte
}

// erlangCorpus has Erlang encode every term and record case with every option.
func erlangCorpus(t *testing.T, rel erltest.Release) []erlEncoding {
	t.Helper()
	var lines []string
	for _, c := range termCases {
		lines = append(lines, fmt.Sprintf("{%s, %s}.", erlString(c.name), erlString(c.erl)))
	}
	for _, r := range recordCases {
		lines = append(lines, fmt.Sprintf("{%s, %s}.", erlString(r.name), erlString(r.erl)))
	}
	var opts []string
	for _, o := range erlOptions {
		opts = append(opts, fmt.Sprintf("{%s, %s}", erlString(o.name), o.erl))
	}
	program := fmt.Sprintf(`Opts = [%s],
lists:foreach(fun({Name, Src}) ->
  T = Eval(Src),
  lists:foreach(fun({O, OL}) -> io:format("~s ~s ~s~n", [Name, O, binary:encode_hex(term_to_binary(T, OL))]) end, Opts)
end, Cases)`, strings.Join(opts, ", "))
	out := evalWithData(t, rel, lines, program)
	var encs []erlEncoding
	for _, line := range out {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("unexpected Erlang output line %q", line)
		}
		data, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		encs = append(encs, erlEncoding{file: fmt.Sprintf("otp%s-%s-%s", rel.Major, f[0], f[1]), name: f[0], data: data})
	}
	if want := (len(termCases) + len(recordCases)) * len(erlOptions); len(encs) != want {
		t.Fatalf("Erlang printed %d encodings, want %d", len(encs), want)
	}
	return encs
}

func TestInteropDecode(t *testing.T) {
	rel := erltest.FromEnv(t)
	encs := erlangCorpus(t, rel)

	unique := map[string]erlEncoding{}
	kinds := map[byte]bool{}
	for _, e := range encs {
		kinds[e.data[1]] = true
		if r, ok := recordByName(e.file); ok {
			checkRecordBytes(t, e.file, e.data, r)
		} else {
			c, ok := caseByName(e.file)
			if !ok {
				t.Fatalf("no case for %s", e.file)
			}
			v, err := Unmarshal(e.data)
			if err != nil {
				t.Errorf("%s: decoding %x: %v", e.file, e.data, err)
				continue
			}
			if c.noEncode {
				if _, ok := v.(Fun); !ok {
					t.Errorf("%s: decoded %T, want Fun", e.file, v)
				}
			} else if !strictEqual(v, c.want) {
				t.Errorf("%s: decoded\n %s\nwant\n %s", e.file, show(v), show(c.want))
			}
			checkRoundTrip(t, e.file, v)
		}
		if _, dup := unique[string(e.data)]; !dup {
			unique[string(e.data)] = e
		}
	}
	if !kinds[TagCompressed] {
		t.Errorf("the corpus holds no compressed term")
	}
	// The releases differ in term_to_binary/1's atoms: ATOM_EXT (Latin-1) up to OTP 25, UTF-8 after.
	wantAtomTag := byte(TagSmallAtomUTF8)
	if rel.Major == "25" {
		wantAtomTag = TagAtom
	}
	for _, e := range encs {
		if e.file == "otp"+rel.Major+"-atom_ascii-t2b" && e.data[1] != wantAtomTag {
			t.Errorf("OTP %s encodes atoms with tag %d, expected %d", rel.Major, e.data[1], wantAtomTag)
		}
		if e.file == "otp"+rel.Major+"-float_pi-m0" && e.data[1] != TagFloat {
			t.Errorf("{minor_version, 0} did not give FLOAT_EXT: tag %d", e.data[1])
		}
	}
	t.Logf("OTP %s: %d encodings, %d distinct", rel.Major, len(encs), len(unique))

	// Go re-encodes each distinct Erlang encoding; Erlang compares the two decodings.
	var lines []string
	var keys []string
	for k := range unique {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := unique[k]
		v, err := Unmarshal(e.data)
		if err != nil {
			continue // reported above
		}
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("%s: re-encoding: %v", e.file, err)
		}
		lines = append(lines, fmt.Sprintf("{%s, %s, %s}.", erlString(e.file), erlString(hex.EncodeToString(e.data)), erlString(hex.EncodeToString(b))))
	}
	out := evalWithData(t, rel, lines, `lists:foreach(fun({Name, Orig, Go}) ->
  Want = binary_to_term(Hex(Orig)),
  Same = try binary_to_term(Hex(Go), [safe]) =:= Want catch C:E -> {C, E} end,
  io:format("~s ~p~n", [Name, Same])
end, Cases)`)
	checkTrueLines(t, out, len(lines))

	if os.Getenv(writeCorpusEnv) == "1" {
		files := map[string][]byte{}
		for _, e := range unique {
			if len(e.data) <= 8<<10 {
				files[e.file] = e.data
			}
		}
		writeCorpus(t, files)
	}
}

func TestInteropEncode(t *testing.T) {
	rel := erltest.FromEnv(t)
	type entry struct {
		name, erl string
		data      []byte
		exact     bool
	}
	var entries []entry
	for _, c := range termCases {
		if c.noEncode {
			continue
		}
		b, err := Marshal(c.want)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		entries = append(entries, entry{c.name, c.erl, b, !c.inexact})
	}
	for _, c := range goCases {
		b, err := Marshal(c.value)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		entries = append(entries, entry{c.name, c.erl, b, !c.inexact})
	}
	for _, r := range recordCases {
		var b []byte
		var err error
		if r.metric != nil {
			if err := r.metric.Validate(RecordLimits{}); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			b, err = AppendMetric(nil, r.metric)
		} else {
			if err := r.alert.Validate(RecordLimits{}); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			b, err = AppendAlert(nil, r.alert)
		}
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		entries = append(entries, entry{r.name, r.erl, b, true})
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, fmt.Sprintf("{%s, %s, %s}.", erlString(e.name), erlString(e.erl), erlString(hex.EncodeToString(e.data))))
	}
	out := evalWithData(t, rel, lines, `lists:foreach(fun({Name, Src, Go}) ->
  Want = Eval(Src),
  B = Hex(Go),
  Same = try binary_to_term(B, [safe]) =:= Want catch C:E -> {C, E} end,
  io:format("~s ~p ~p~n", [Name, Same, B =:= term_to_binary(Want, [{minor_version, 2}])])
end, Cases)`)
	if len(out) != len(entries) {
		t.Fatalf("Erlang answered %d lines for %d terms:\n%s", len(out), len(entries), strings.Join(out, "\n"))
	}
	for i, line := range out {
		f := strings.Fields(line)
		e := entries[i]
		if len(f) != 3 || f[0] != e.name {
			t.Fatalf("unexpected line %q for %s", line, e.name)
		}
		if f[1] != "true" {
			t.Errorf("%s: binary_to_term(Go bytes, [safe]) =:= %s is %s (bytes %x)", e.name, e.erl, f[1], e.data)
		}
		if e.exact && f[2] != "true" {
			t.Errorf("%s: Go bytes %x differ from term_to_binary(%s, [{minor_version, 2}])", e.name, e.data, e.erl)
		}
	}
}

// checkTrueLines expects n lines "Name true".
func checkTrueLines(t *testing.T, out []string, n int) {
	t.Helper()
	if len(out) != n {
		t.Fatalf("Erlang answered %d lines for %d terms:\n%s", len(out), n, strings.Join(out, "\n"))
	}
	for _, line := range out {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] != "true" {
			t.Errorf("Erlang: %s", line)
		}
	}
}
