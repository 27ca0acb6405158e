package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"

	"github.com/carbonledger/carbonledger/internal/store"
	"github.com/carbonledger/carbonledger/ledger"
)

// Cursors are opaque to clients: base64url text they pass back as after=. A list's cursor
// is the key of the last item it returned (keyset paging).

type contractCursor struct {
	Code string `json:"c"`
}

type entryCursor struct {
	Seq int64 `json:"s"`
}

// encodeCursor writes a list's cursor: the list's kind ("c" contracts, "e" a contract's
// entries), a dot, and the key as JSON; a cursor of another list is refused.
func encodeCursor(kind string, v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(append([]byte(kind+"."), b...))
}

func badCursor(v string) error {
	return ledger.Invalid("after", v, "is not a cursor this list returned (pass its next value unchanged)")
}

func decodeCursor(v, kind string, dst any) error {
	if v == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return badCursor(v)
	}
	rest, ok := bytes.CutPrefix(b, []byte(kind+"."))
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if !ok || dec.Decode(dst) != nil {
		return badCursor(v)
	}
	return nil
}

// The journal feed's cursor is how far each book has been read: a version byte, then for
// each book in id order the difference of its id from the one before and its last seq read,
// as unsigned varints.
const feedCursorVersion = 1

func encodeFeedCursor(seen map[int64]int64) string {
	books := make([]int64, 0, len(seen))
	for b := range seen {
		books = append(books, b)
	}
	slices.Sort(books)
	out := []byte{feedCursorVersion}
	prev := int64(0)
	for _, b := range books {
		out = binary.AppendUvarint(out, uint64(b-prev))
		out = binary.AppendUvarint(out, uint64(seen[b]))
		prev = b
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

func decodeFeedCursor(v string) ([]store.FeedPosition, error) {
	if v == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) == 0 || b[0] != feedCursorVersion {
		return nil, badCursor(v)
	}
	b = b[1:]
	var out []store.FeedPosition
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 || d == 0 && len(out) > 0 {
			return nil, badCursor(v)
		}
		b = b[n:]
		seq, n := binary.Uvarint(b)
		if n <= 0 || d > 1<<62 || seq > 1<<62 {
			return nil, badCursor(v)
		}
		b = b[n:]
		if prev += int64(d); prev > 1<<62 {
			return nil, badCursor(v)
		}
		out = append(out, store.FeedPosition{Book: prev, Seq: int64(seq)})
	}
	return out, nil
}
