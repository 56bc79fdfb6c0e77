package config

import "testing"

// TestUpdateCredentials: the registry credentials are named by a path
// under /var, never a file of the build.
func TestUpdateCredentials(t *testing.T) {
	s, err := Parse("u.yml", []byte(head+"update:\n  credentials: /var/lib/bulkhead/registry-auth.json\n"))
	if err != nil || s.Update.Credentials != "/var/lib/bulkhead/registry-auth.json" {
		t.Fatalf("credentials: %+v, %v", s.Update, err)
	}
	for _, p := range []string{"auth.json", "/etc/auth.json", "/var/../etc/x"} {
		if _, err := Parse("u.yml", []byte(head+"update:\n  credentials: "+p+"\n")); err == nil {
			t.Errorf("credentials %q accepted", p)
		}
	}
}
