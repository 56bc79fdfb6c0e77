package version

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestApkOracle holds Apk to apk-tools' own test vectors (see the header of
// testdata/apk-version.data): every comparison and every validity line.
func TestApkOracle(t *testing.T) {
	f, err := os.Open("testdata/apk-version.data")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	checked := 0
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1:
			v, invalid := strings.CutPrefix(fields[0], "!")
			if ApkValid(v) == invalid {
				t.Errorf("line %d: ApkValid(%q) = %v", n, v, !invalid)
			}
		case 3:
			op, negate := strings.CutPrefix(fields[1], "!")
			if apkMatch(fields[0], op, fields[2]) == negate {
				t.Errorf("line %d: %s %s %s does not hold", n, fields[0], fields[1], fields[2])
			}
		default:
			t.Fatalf("line %d: cannot read %q", n, line)
		}
		checked++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 700 {
		t.Fatalf("only %d vectors read", checked)
	}
}

// apkMatch is apk_version_match for the operators the vectors use.
func apkMatch(a, op, b string) bool {
	fuzzy := strings.Contains(op, "~")
	c := apkCompare(a, b, fuzzy)
	for _, r := range op {
		switch {
		case r == '<' && c < 0, r == '>' && c > 0, (r == '=' || r == '~') && c == 0:
			return true
		}
	}
	return false
}
