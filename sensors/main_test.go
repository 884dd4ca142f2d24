package sensors_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine running: every
// Run a test starts must have returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
