package bulk

import (
	"bufio"
	"io"
)

// keepCRLF reads a CSV file for encoding/csv so that a line break written as CR LF inside a
// quoted cell comes back as CR LF: encoding/csv drops the CR of every CR LF that ends a
// physical line, inside quotes too, so a reason or a note holding "\r\n" (which the ledger
// keeps as given) would be read back as "\n". Inside quotes each CR LF is passed on as
// CR CR LF, of which encoding/csv keeps CR LF; outside quotes (the ends of records) nothing
// changes. Quote state toggles at every '"', which also holds for a doubled quote inside a
// quoted cell; a stray quote in an unquoted cell is an error encoding/csv reports itself.
type keepCRLF struct {
	r       *bufio.Reader
	inQuote bool
	pending []byte
}

func newKeepCRLF(r io.Reader) *keepCRLF { return &keepCRLF{r: bufio.NewReaderSize(r, 1<<16)} }

func (k *keepCRLF) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(k.pending) > 0 {
			c := copy(p[n:], k.pending)
			k.pending = k.pending[c:]
			n += c
			continue
		}
		if n > 0 && k.r.Buffered() == 0 {
			return n, nil // what is read so far, without waiting on the source
		}
		b, err := k.r.ReadByte()
		if err != nil {
			return n, err
		}
		switch {
		case b == '"':
			k.inQuote = !k.inQuote
		case b == '\r' && k.inQuote:
			if next, err := k.r.Peek(1); err == nil && next[0] == '\n' {
				k.pending = append(k.pending[:0], '\r')
			}
		}
		p[n] = b
		n++
	}
	return n, nil
}
