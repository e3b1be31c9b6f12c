package scheduler_test

import (
	"os"
	"testing"

	"github.com/aionsched/aion/executor/supervisor"
)

// TestMain lets this test binary be the supervisor of the host runs its
// executors start (they start supervisors from their own program).
func TestMain(m *testing.M) {
	supervisor.RunIfInvoked()
	os.Exit(m.Run())
}
