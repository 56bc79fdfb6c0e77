package main

import (
	"bytes"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 0, "oneshot: done\n"},
		{[]string{"-exit", "4"}, 4, "oneshot: failing with status 4 as asked\n"},
		{[]string{"-bogus"}, 2, ""},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code || stdout.String() != tc.out {
			t.Errorf("run(%q) = %d %q, want %d %q", tc.args, code, stdout.String(), tc.code, tc.out)
		}
	}
}
