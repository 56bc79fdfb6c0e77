package config

import (
	"testing"
	"time"
)

func TestUpdateSection(t *testing.T) {
	s, err := Parse("u.yml", []byte(head+"update:\n  keys: [a.pub, b.pub]\n  expires: 720h\n  from: 1.0.0\n  downgrade: [1.3.0]\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := s.Update
	if len(u.Keys) != 2 || u.KeysPos[1].String() != "u.yml:6:17" || u.From != "1.0.0" || u.Downgrade[0] != "1.3.0" {
		t.Fatalf("update %+v", u)
	}
	exp, err := ParseExpiry(u.Expires, 100)
	if err != nil || !exp.Equal(time.Unix(100, 0).Add(720*time.Hour)) {
		t.Fatalf("expiry %v %v", exp, err)
	}
}

func TestUpdateSectionErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"update:\n  keys: [\"\"]\n":          `u.yml:6:10: update key: empty path`,
		"update:\n  expires: soon\n":         `u.yml:6:12: expires: expected a time (2027-06-30T12:00:00Z), a date (2027-06-30) or a positive duration (720h), got "soon"`,
		"update:\n  from: 1+2\n":             `u.yml:6:9: from: "1+2" may hold only letters, digits and . _ - ~ ^`,
		"update:\n  downgrade: [1.0, a/b]\n": `u.yml:6:20: downgrade: "a/b" may hold only letters, digits and . _ - ~ ^`,
		"update:\n  key: [a.pub]\n":          `u.yml:6:3: unknown field "key" (did you mean "keys"?)`,
	} {
		_, err := Parse("u.yml", []byte(head+yaml))
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got: %v\nwant: %s", yaml, err, want)
		}
	}
}
