package bulk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/carbonledger/carbonledger/ledger"
	"github.com/carbonledger/carbonledger/reports"
)

// fuzzTerms is a contract's JSON as a contract row carries it.
const fuzzTerms = `{"code":"IMP-1","buyer":"Microsoft","supplier":"Import Supplier","project":"Import test","method":"biochar",` +
	`"country":"US","region":"Region 1","registry":"puro","standard":"synthetic","durability_years":"100",` +
	`"term_start":"2026-01-01","term_end":"2028-12-31","signed_on":"2025-12-01","tonnes":"100","delivery_mode":"transfer"}`

// FuzzImportRows reads a CSV or NDJSON import file as carbonledger import does, and parses each
// row with the ledger's parsers (no database). A file the reader cannot read is refused naming
// the file. Each refused row is reported as that row's errors, each with its line and a rule,
// and a field whenever the ledger named one. An accepted operation's JSON form reads back as
// the same request; it is under the row's key, or the key derived from its line when the row
// gives none; and no cell or member of the row was left unread or given twice. An accepted
// contract's canonical form reads back with the same terms digest. The refused rows, written
// to a reject file, read back as the same rows.
func FuzzImportRows(f *testing.F) {
	csvTerms := `"` + strings.ReplaceAll(fuzzTerms, `"`, `""`) + `"`
	for _, s := range []struct {
		ndjson bool
		kind   uint8 // 0: told from the file, 1: contracts, 2: operations
		in     string
	}{
		{false, 0, "op,contract,tonnes,date\ndeliver,CC-A,0.001,2026-02-01\ndeliver,CC-B,0.001,2026-02-28\n"},
		{false, 0, strings.Join([]string{
			"op,contract,tonnes,date,serials,beneficiary,reason,key,terms",
			"contract,IMP-1,,,,,,," + csvTerms,
			"deliver,IMP-1,2,2026-06-01,TEST:1-2,,,,",
			"retire,IMP-1,2,2026-06-02,TEST:1-2,Microsoft,claim,,",
			"deliver,IMP-1,1.0001,2026-06-31,,,,,",
			"deliver,IMP-1,1,2026-06-05,,,,k1,",
			"cancel,IMP-1,1,2026-06-07,,,,,",
			"frobnicate,IMP-1,1,2026-06-08,,,,,",
			"deliver,IMP-1,1,2026-06-09,,,,extra,,x",
		}, "\n") + "\n"},
		{false, 0, "\ufeffOp , Contract,Tonnes,Date,Serials,Note,Error\r\n" +
			"deliver,IMP-1,5000,2025-03-01,CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000,\"a, b\",old reason\r\n" +
			"reverse,IMP-1,425,2025-03-02,19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1,,\r\n" +
			"retire,IMP-1,3657,2025-03-03,RW-5-1463953-2-2-0-7014 - RW-5-1467609-2-2-0-7014,,\r\n"},
		{false, 0, "op,entry,reason,date,key\nrevert,key:k1,typo,2026-06-10, k2 \nrevert,0190c3a2-0000-7000-8000-000000000000,x,,\n"},
		{false, 0, "op,contract,date,reason,schedule\namend,IMP-1,2026-01-02,r,\"[{\"\"year\"\":1,\"\"tonnes\"\":\"\"50\"\"}]\"\n"},
		{false, 0, "code,buyer,supplier,project,method,country,region,registry,standard," +
			"durability_years,term_start,term_end,signed_on,tonnes,delivery_mode,schedule,registry_projects,key\n" +
			"CSV-1,Acme,Supplier One,Project,biochar,US,R,puro,std,100,2026-01-01,2027-12-31,2025-12-01,1000,transfer," +
			`"[{""year"":1,""tonnes"":""400""},{""year"":2,""tonnes"":""600""}]",,k` + "\n" +
			"CSV-2,Acme,Supplier Two,Project,biochar,US,R,car,std,1000+,2026-01-01,2026-12-31,2025-12-01,50.5,transfer,," +
			`"[""CAR1335""]",` + "\n"},
		{false, 1, "code,buyer\nCSV-3,Acme\n"},
		{false, 2, "code,buyer\nCSV-3,Acme\n"},
		{false, 0, "op,op\ndeliver,deliver\n"},
		{false, 0, "a,b\n1,2\n"},
		{false, 0, ""},
		{true, 0, `{"op":"contract","key":"sign:TN150","terms":` + fuzzTerms + "}\n" +
			`{"op":"deliver","contract":"IMP-1","tonnes":"5","date":"2026-06-01","vintage":2026}` + "\n" +
			`{"op":"retire","contract":"IMP-1","tonnes":"2.5","date":"2026-06-02","beneficiary":"Microsoft","reason":"claim","key":"r1"}` + "\n" +
			`{"op":"retire","contract":"IMP-1","tonnes":"2.501","date":"2026-06-02","beneficiary":"Microsoft","reason":"claim"}` + "\n"},
		{true, 0, fuzzTerms + "\n\n" + `{"code":"X","key":"k","error":"was refused"}` + "\n"},
		{true, 0, `{"op":"deliver","contract":"IMP-1","tonnes":"1","date":"2026-06-01","key":null}` + "\n" +
			`{"op":"deliver","contract":"IMP-1","tonnes":"1","date":"2026-06-01","terms":{}}` + "\n" +
			`{"op":5}` + "\n" + `{"op":"contract"}` + "\n" + `{"op":"contract","terms":"{}"}` + "\n"},
		{true, 0, "[]\n\"x\"\n{\n{}\n{} {}\n"},
		{true, 1, `{"op":"deliver"}` + "\n"},
		{true, 2, fuzzTerms + "\n"},
	} {
		f.Add(s.ndjson, s.kind, s.in)
	}
	f.Fuzz(func(t *testing.T, ndjson bool, kindN uint8, in string) {
		kind := []string{"", KindContracts, KindOperations}[kindN%3]
		format, name := "csv", "rows.csv"
		if ndjson {
			format, name = "ndjson", "rows.ndjson"
		}
		rows, header, ok := readRows(t, format, name, kind, in)
		if !ok {
			return
		}
		type refusal struct {
			r    row
			errs []RowError
		}
		var refused []refusal
		for _, r := range rows {
			orig := r
			orig.fields = maps.Clone(r.fields) // parseRow adds the key to the row's maps
			orig.members = maps.Clone(r.members)
			derived := "import:fuzz:" + strconv.Itoa(r.line)
			if r.key == "" {
				r.key = derived
			}
			c, req, err := parseRow(r)
			if err != nil {
				errs, ok := rowErrors(name, r.line, err)
				if !ok || len(errs) == 0 {
					t.Fatalf("line %d: %v (%T) is not reported as the row's error", r.line, err, err)
				}
				var fe *ledger.FieldError
				named := errors.As(err, &fe)
				for _, e := range errs {
					if e.File != name || e.Line != r.line || e.Rule == "" || (named && e.Field == "") {
						t.Fatalf("line %d: %v reported as %+v, want the file, the line, a rule and the field", r.line, err, e)
					}
				}
				refused = append(refused, refusal{orig, errs})
				continue
			}
			if req == nil {
				canon, _ := json.Marshal(c)
				back, err := ledger.ParseContractJSON(bytes.NewReader(canon))
				if err != nil || back.TermsDigest() != c.TermsDigest() {
					t.Fatalf("line %d: contract %s reads back as %v, want the same terms", r.line, canon, err)
				}
				continue
			}
			b, _ := json.Marshal(req)
			back, err := ledger.ParseOperationJSON(b)
			if err != nil || !maps.Equal(back.Fields(), req.Fields()) {
				t.Fatalf("line %d: the request's JSON form %s reads back as %v, %v", r.line, b, back, err)
			}
			own := ledger.OpFields(req.Op())
			wantKey := derived
			if format == "csv" {
				for i, h := range header {
					v := orig.raw[i]
					switch {
					case h == "key" && strings.TrimSpace(v) != "":
						wantKey = strings.TrimSpace(v)
					case v == "" || h == colOp || h == colError || h == "key":
					case !slices.Contains(own, h):
						t.Fatalf("line %d: %s accepted with its %s cell %q left unread", r.line, req.Op(), h, v)
					}
				}
			} else {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(orig.rawJSON, &m); err != nil {
					t.Fatalf("line %d: accepted %q, which is not a JSON object", r.line, orig.rawJSON)
				}
				if name, ok := ledger.RepeatedMember(orig.rawJSON); ok {
					t.Fatalf("line %d: %s accepted, though the line gives %s twice (the ledger refuses that)", r.line, req.Op(), name)
				}
				for n, v := range m {
					var s string
					switch {
					case n == "key" && string(v) == "null":
					case n == "key" && json.Unmarshal(v, &s) != nil:
						t.Fatalf("line %d: accepted under key %q, though its key %s is not a JSON string", r.line, req.IdempotencyKey(), v)
					case n == "key" && strings.TrimSpace(s) != "":
						wantKey = strings.TrimSpace(s)
					case n == colOp || n == colError || n == "key":
					case !slices.Contains(own, n):
						t.Fatalf("line %d: %s accepted with its member %s left unread", r.line, req.Op(), n)
					}
				}
			}
			if req.IdempotencyKey() != wantKey {
				t.Fatalf("line %d: accepted under key %q, want %q", r.line, req.IdempotencyKey(), wantKey)
			}
		}
		if len(refused) == 0 {
			return
		}
		var buf bytes.Buffer
		rw := newRejects(nopCloser{&buf}, &File{Name: name, Format: format})
		if cw, ok := rw.(*csvRejects); ok {
			if err := cw.header(header); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range refused {
			if err := rw.Reject(x.r, x.errs); err != nil {
				t.Fatalf("line %d: writing the reject: %v", x.r.line, err)
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		rname := strings.Replace(name, ".", ".rejects.", 1)
		again, againHeader, ok := readRows(t, format, rname, kind, buf.String())
		if !ok || len(again) != len(refused) {
			t.Fatalf("the reject file of %d rows reads back as %d rows:\n%s", len(refused), len(again), buf.String())
		}
		for i, x := range refused {
			if format == "csv" {
				if len(x.r.raw) != len(header) {
					continue // a row of the wrong width gets its reasons where they fit
				}
				errCol := slices.Index(againHeader, colError)
				got := slices.Delete(slices.Clone(again[i].raw), errCol, errCol+1)
				want := slices.Clone(x.r.raw)
				if j := slices.Index(header, colError); j >= 0 {
					want = slices.Delete(want, j, j+1)
				}
				// The reject file neutralises text cells for a spreadsheet; the import reads
				// them back as the same values.
				for k := range got {
					got[k] = reports.Unneutralize(got[k])
				}
				for k := range want {
					want[k] = reports.Unneutralize(want[k])
				}
				if !slices.Equal(got, want) {
					t.Fatalf("line %d: the reject reads back as %q, want %q", x.r.line, got, want)
				}
				continue
			}
			want, wok := jsonObject(x.r.rawJSON)
			got, gok := jsonObject(again[i].rawJSON)
			if !gok {
				t.Fatalf("line %d: the reject %q is not a JSON object", x.r.line, again[i].rawJSON)
			}
			if wok && !reflect.DeepEqual(got, want) {
				t.Fatalf("line %d: the reject reads back as %v, want %v", x.r.line, got, want)
			}
		}
	})
}

// readRows reads every row of an import file; ok is false when the file cannot be read at all
// (its header), which must be said naming the file.
func readRows(t *testing.T, format, name, kind, in string) (rows []row, header []string, ok bool) {
	t.Helper()
	var rd reader
	if format == "csv" {
		c, err := newCSVReader(strings.NewReader(in), name, kind)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("%q: the header is refused with %q, which does not name the file", in, err)
			}
			return nil, nil, false
		}
		rd, header = c, c.header
	} else {
		rd = newNDJSONReader(strings.NewReader(in), name, kind)
	}
	last := 0
	for {
		r, ok := rd.next()
		if !ok {
			break
		}
		if r.line <= last || (format == "csv" && r.line < 2) {
			t.Fatalf("%q: a row at line %d after line %d", in, r.line, last)
		}
		last = r.line
		rows = append(rows, r)
	}
	if err := rd.failed(); err != nil && !strings.HasPrefix(err.Error(), name+":") {
		t.Fatalf("%q: the reader stopped with %q, which does not name the file", in, err)
	}
	return rows, header, true
}

// jsonObject decodes an NDJSON line's members, less the error member a reject file adds.
func jsonObject(b []byte) (map[string]any, bool) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // more than one value
	}
	delete(m, colError)
	return m, true
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
