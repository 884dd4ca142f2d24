package brokertest

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writePasswordFile writes a Mosquitto password file for users in the
// format mosquitto_passwd has written since 2.0 ("$7$": PBKDF2-SHA512, 101
// iterations, 12-byte salt), so the tests do not need that tool.
func writePasswordFile(t testing.TB, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for _, user := range slices.Sorted(maps.Keys(users)) {
		if strings.ContainsAny(user, ":\n") {
			t.Fatalf("password file: username %q may not contain ':' or a newline", user)
		}
		salt := make([]byte, 12)
		rand.Read(salt)
		const iterations = 101
		hash, err := pbkdf2.Key(sha512.New, users[user], salt, iterations, sha512.Size)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:$7$%d$%s$%s\n", user, iterations,
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(hash))
	}
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
