package build

import (
	"errors"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/trust"
)

// Problem is one thing wrong with a build: what, and where in a spec when
// the error says so.
type Problem struct {
	Pos config.Pos
	Msg string
}

// Problems lists what err reports, one problem per spec error, image error
// or trust failure (the errors err joins, when it joins some), each with
// its position when it has one.
func Problems(err error) []Problem {
	if err == nil {
		return nil
	}
	var out []Problem
	var ce *config.Error
	var pe *config.PosError
	var te *trust.Error
	var errs config.Errors
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			out = append(out, Problem{e.Pos, e.Msg})
		}
	case errors.As(err, &ce):
		out = append(out, Problem{ce.Pos, ce.Msg})
	case errors.As(err, &pe):
		out = append(out, Problem{pe.Pos, unprefixed(pe.Pos, err)})
	case errors.As(err, &te) && te.Pos != (config.Pos{}):
		out = append(out, Problem{te.Pos, unprefixed(te.Pos, err)})
	default:
		out = append(out, Problem{Msg: err.Error()})
	}
	return out
}

// unprefixed is err's message without pos ("file:line:col: "), which the
// problem carries apart; the context around it stays ("assembling root:
// services "web": uid: ...").
func unprefixed(pos config.Pos, err error) string {
	return strings.Replace(err.Error(), pos.String()+": ", "", 1)
}
