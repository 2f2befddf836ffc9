package worker

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// transient reports whether a call may succeed if repeated: the peer is down or slow.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// retry runs call with a per-attempt deadline, repeating transient failures with exponential
// backoff (50 ms doubling to 2 s) for up to cfg.RetryFor. what names the call in errors.
func (w *Worker) retry(ctx context.Context, what string, call func(context.Context) error) error {
	deadline := time.Now().Add(w.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.cfg.RPCTimeout)
		err := call(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				w.log.Info("call recovered", "call", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if !transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("%s: gave up after %d attempts over %v: %w",
				what, attempt, w.cfg.RetryFor, err)
		}
		if attempt == 1 || attempt%10 == 0 {
			w.log.Warn("call failed, retrying", "call", what, "attempt", attempt,
				"backoff", backoff, "err", err)
		}
		if err := sleep(ctx, backoff); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
