package reports

import (
	"errors"
	"io"
)

// HTML renders the term report as a self-contained page. (Being written.)
func (t Term) HTML(w io.Writer) error { return errors.New("html: not yet") }

// HTML renders the period report as a self-contained page. (Being written.)
func (p PeriodReport) HTML(w io.Writer) error { return errors.New("html: not yet") }

// HTML renders the portfolio report as a self-contained page. (Being written.)
func (p Portfolio) HTML(w io.Writer) error { return errors.New("html: not yet") }
