package version

import "strings"

// apk suffix ranks: pre-releases sort before the release, patches after.
var apkSuffix = map[string]int{
	"alpha": -4, "beta": -3, "pre": -2, "rc": -1,
	"cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5,
}

type apkVersion struct {
	nums     []string
	letter   byte
	suffixes [][2]string // name, number
	rev      string
	valid    bool
}

func parseApk(v string) apkVersion {
	var p apkVersion
	s := v
	if i := strings.LastIndex(s, "-r"); i >= 0 {
		p.rev, s = s[i+2:], s[:i]
		if d, rest := digits(p.rev); d == "" || rest != "" {
			return p
		}
	}
	for {
		d, rest := digits(s)
		if d == "" {
			return p
		}
		p.nums = append(p.nums, d)
		s = rest
		if !strings.HasPrefix(s, ".") {
			break
		}
		s = s[1:]
	}
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		p.letter, s = s[0], s[1:]
	}
	for s != "" {
		if s[0] != '_' {
			return p
		}
		end := 1
		for end < len(s) && s[end] >= 'a' && s[end] <= 'z' {
			end++
		}
		name := s[1:end]
		if _, ok := apkSuffix[name]; !ok {
			return p
		}
		num, rest := digits(s[end:])
		p.suffixes = append(p.suffixes, [2]string{name, num})
		s = rest
	}
	p.valid = true
	return p
}

// Apk orders two Alpine versions as apk does: dotted numbers, an optional
// letter, suffixes (_alpha < _beta < _pre < _rc < release < _cvs < _svn <
// _git < _hg < _p, each with an optional number), then the -rN revision.
// Versions apk would reject compare as strings.
func Apk(a, b string) int {
	pa, pb := parseApk(a), parseApk(b)
	if !pa.valid || !pb.valid {
		return strings.Compare(a, b)
	}
	for i := 0; i < len(pa.nums) || i < len(pb.nums); i++ {
		switch {
		case i >= len(pa.nums):
			return -1
		case i >= len(pb.nums):
			return 1
		}
		if c := cmpDigits(pa.nums[i], pb.nums[i]); c != 0 {
			return c
		}
	}
	if pa.letter != pb.letter {
		return sign(int(pa.letter) - int(pb.letter))
	}
	for i := 0; i < len(pa.suffixes) || i < len(pb.suffixes); i++ {
		ra, na := suffixAt(pa.suffixes, i)
		rb, nb := suffixAt(pb.suffixes, i)
		if ra != rb {
			return sign(ra - rb)
		}
		if c := cmpDigits(na, nb); c != 0 {
			return c
		}
	}
	return cmpDigits(pa.rev, pb.rev)
}

func suffixAt(s [][2]string, i int) (int, string) {
	if i >= len(s) {
		return 0, ""
	}
	return apkSuffix[s[i][0]], s[i][1]
}
