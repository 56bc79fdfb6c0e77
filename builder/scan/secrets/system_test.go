package secrets

import (
	"strings"
	"testing"
)

func TestPasswordHashes(t *testing.T) {
	shadow := "root:$6$Gq1k9c5Z$0y0pJ1fA8sOa2kz3m4n5b6v7c8x9z0lkjhgfdsaqwertyuiopASDFGHJKLZXCVBNM12345678.:19000:0:99999:7:::\n" +
		"daemon:*:19000:0:99999:7:::\n" +
		"nobody:!:19000::::::\n" +
		"app:$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg:19000::::::\n" +
		"web:$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234:19000::::::\n"
	fs := Scan("etc/shadow", []byte(shadow), true)
	if len(fs) != 3 {
		t.Fatalf("findings %+v, want the three hashes", fs)
	}
	for i, want := range []struct {
		line    int
		excerpt string
	}{{1, "root:$6$G****"}, {4, "app:$y$j****"}, {5, "web:$2b$****"}} {
		if fs[i].Rule != "password-hash" || fs[i].Line != want.line || fs[i].Excerpt != want.excerpt {
			t.Errorf("finding %d: %+v, want line %d excerpt %q", i, fs[i], want.line, want.excerpt)
		}
	}
	// Locked and empty accounts, and short strings that merely look alike,
	// are not hashes.
	for _, s := range []string{"root:x:0:0::/root:/bin/sh\n", "price: $5$ off\n", "a:$1$salt$short:1::::::\n"} {
		if fs := Scan("f", []byte(s), true); len(fs) != 0 {
			t.Errorf("%q: %+v", s, fs)
		}
	}
}

func TestEnvironmentDump(t *testing.T) {
	env := "HOME=/root\x00PATH=/usr/bin:/bin\x00AWS_PROFILE=prod\x00TERM=xterm\x00"
	fs := Scan("etc/env", []byte(env), false)
	if len(fs) != 1 || fs[0].Rule != "environment-dump" || !strings.HasPrefix(fs[0].Excerpt, "environment HOME, PATH, AWS_PROFILE…: ") {
		t.Fatalf("findings %+v", fs)
	}
	for _, s := range []string{
		"HOME=/root\x00PATH=/bin\x00",                   // too few to be a dump
		"A=1\x00B=2\x00C=3\x00",                         // no variable every environment has
		"HOME=/root\x00PATH=/bin\x00\x7fELF binary\x00", // not only variables
	} {
		if fs := Scan("f", []byte(s), false); len(fs) != 0 {
			t.Errorf("%q: %+v", s, fs)
		}
	}
}
