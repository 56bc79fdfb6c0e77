// Package backoff decides how long the init waits before restarting a
// service that exited: exponential, capped, and forgiven after a healthy run.
package backoff

import "time"

// Policy is a restart policy: the first delay, the cap, and how long a run
// must last to count as healthy (which resets the delay).
type Policy struct {
	Initial time.Duration
	Max     time.Duration
	Healthy time.Duration
}

// Default waits 1s, doubling up to 30s, and forgives after 10s of running.
var Default = Policy{Initial: time.Second, Max: 30 * time.Second, Healthy: 10 * time.Second}

// State tracks one service's consecutive crashes under a Policy.
type State struct {
	policy  Policy
	crashes int
}

// New returns the state of a service that has not crashed yet.
func (p Policy) New() *State {
	return &State{policy: p}
}

// Exited records a run that lasted ran and returns the delay before the next
// start and the number of consecutive crashes including this one.
func (s *State) Exited(ran time.Duration) (delay time.Duration, crashes int) {
	if ran >= s.policy.Healthy {
		s.crashes = 0
	}
	s.crashes++
	delay = s.policy.Initial
	for i := 1; i < s.crashes && delay < s.policy.Max; i++ {
		delay *= 2
	}
	return min(delay, s.policy.Max), s.crashes
}
