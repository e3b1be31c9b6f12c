package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Defaults of StreamOptions.
const (
	// DefaultPollEvery is how often a followed stream asks for more output.
	DefaultPollEvery = 300 * time.Millisecond
	// DefaultSlowPlan is how long a requested run may go unplanned before
	// a followed stream says it waits for the leader.
	DefaultSlowPlan = 5 * time.Second
	// DefaultServerGone is how long a followed stream asks again after the
	// API stopped answering (a restarted `aion dev` is back within it).
	DefaultServerGone = 10 * time.Second
)

// StreamOptions say how StreamLog reads a fire's output.
type StreamOptions struct {
	// Follow waits for the fire to be planned, to start and to end, and
	// returns once all of its output is written; without it StreamLog
	// writes the output there is now.
	Follow bool
	// Note, when not nil, is told what the stream waits for or works
	// around (in words, once each): a retry, a fire not yet planned or
	// placed, an executor gone.
	Note func(msg string)
	// Attempt, when not 0, reads that attempt alone (1 is the first): the
	// stream ends with it, also when a retry follows.
	Attempt int
	// PollEvery, SlowPlan and ServerGone default to DefaultPollEvery,
	// DefaultSlowPlan and DefaultServerGone. ServerGone is how long a
	// followed stream that had answers keeps asking once the API stops
	// answering; then it fails with a *ServerGoneError.
	PollEvery, SlowPlan, ServerGone time.Duration
}

// ServerGoneError says that the API stopped answering while a stream
// followed a fire, and how the fire was last seen.
type ServerGoneError struct {
	URL  string // the API's base URL
	Fire FireID
	// Last is the last answer about the fire's output (its State, Node and
	// Attempt); a zero State means none came.
	Last LogChunk
	Err  error // what the transport reported
}

func (e *ServerGoneError) Error() string {
	msg := fmt.Sprintf("the Aion API at %s stopped answering while following %s (did the server stop?)", e.URL, e.Fire)
	if e.Last.State == "" {
		return msg
	}
	msg += fmt.Sprintf("; the run was last seen %s", e.Last.State)
	if e.Last.Node != "" {
		msg += " on " + e.Last.Node
	}
	return msg + fmt.Sprintf(" (attempt %d)", e.Last.Attempt)
}

// Unwrap returns the transport's error.
func (e *ServerGoneError) Unwrap() error { return e.Err }

// StreamResult is what StreamLog saw.
type StreamResult struct {
	Fire Fire // the fire's record as last seen
	// FromRecord is true when the executor that ran the fire was gone: the
	// output written is the tail the record keeps (OutputTail), or, when
	// some was written before, may be incomplete.
	FromRecord bool
}

// stream is one StreamLog call.
type stream struct {
	c      *Client
	id     FireID
	w      io.Writer
	opt    StreamOptions
	noted  map[string]bool
	offset int64
	start  time.Time
	// answered is set by the first answer; last is the latest log answer
	// (without its data); goneSince is when the API stopped answering
	// (zero while it answers).
	answered  bool
	last      LogChunk
	goneSince time.Time
	attempt   int // the attempt whose output is followed (0: none yet)
}

// StreamLog writes a fire's output to w from its start, following retries
// (a new attempt's output starts again from its beginning), or the output
// of one attempt (opt.Attempt).
func (c *Client) StreamLog(ctx context.Context, id FireID, w io.Writer, opt StreamOptions) (StreamResult, error) {
	if opt.PollEvery <= 0 {
		opt.PollEvery = DefaultPollEvery
	}
	if opt.SlowPlan <= 0 {
		opt.SlowPlan = DefaultSlowPlan
	}
	if opt.ServerGone <= 0 {
		opt.ServerGone = DefaultServerGone
	}
	s := &stream{c: c, id: id, w: w, opt: opt, noted: make(map[string]bool), start: time.Now()}
	for {
		res, next, err := s.step(ctx)
		if err != nil {
			handled, gone := s.serverGone(err)
			switch {
			case !handled:
				return res, err
			case gone != nil:
				return res, gone
			}
			next = stepWait // no answer: ask again
		}
		switch next {
		case stepDone:
			return res, nil
		case stepAgain:
			continue
		}
		select {
		case <-ctx.Done():
			return StreamResult{}, ctx.Err()
		case <-time.After(opt.PollEvery):
		}
	}
}

// What a stream does after a step.
type stepNext int

const (
	stepWait  stepNext = iota // ask again after PollEvery
	stepAgain                 // ask again at once
	stepDone                  // the stream is done
)

// step asks for the output from the offset and writes what comes.
func (s *stream) step(ctx context.Context) (StreamResult, stepNext, error) {
	chunk, err := s.c.LogAttempt(ctx, s.id, s.opt.Attempt, s.offset)
	if err != nil {
		res, stop, err := s.refused(ctx, err)
		if stop || err != nil {
			return res, stepDone, err
		}
		return res, stepWait, nil
	}
	s.answer()
	if s.attempt != 0 && chunk.Attempt != s.attempt {
		s.note(fmt.Sprintf("attempt %d", chunk.Attempt), "%s: attempt %d", s.id, chunk.Attempt)
		s.attempt, s.offset = chunk.Attempt, 0
		return StreamResult{}, stepAgain, nil
	}
	s.attempt, s.last = chunk.Attempt, LogChunk{Fire: chunk.Fire, State: chunk.State, Node: chunk.Node, Attempt: chunk.Attempt}
	done, more, err := s.write(ctx, chunk)
	switch {
	case err != nil:
		return derefResult(done), stepDone, err
	case done != nil:
		return *done, stepDone, nil
	case more:
		return StreamResult{}, stepAgain, nil
	}
	return StreamResult{}, stepWait, nil
}

// answer notes that the API answered, and says so if it had stopped.
func (s *stream) answer() {
	s.answered = true
	if !s.goneSince.IsZero() {
		s.goneSince = time.Time{}
		s.note("back", "the Aion API answers again; following %s", s.id)
	}
}

// serverGone handles a request of a followed stream that got no answer
// after earlier ones did: handled is false for any other error. While the
// API has been silent for less than ServerGone the stream asks again (gone
// is nil); then gone is the *ServerGoneError to end with.
func (s *stream) serverGone(err error) (handled bool, gone error) {
	var ue *UnreachableError
	if !s.opt.Follow || !s.answered || !errors.As(err, &ue) {
		return false, nil
	}
	if s.goneSince.IsZero() {
		s.goneSince = time.Now()
		s.note("gone", "the Aion API at %s stopped answering (did the server stop?); asking again for %s", ue.URL, s.opt.ServerGone)
	}
	if time.Since(s.goneSince) < s.opt.ServerGone {
		return true, nil
	}
	return true, &ServerGoneError{URL: ue.URL, Fire: s.id, Last: s.last, Err: ue.Err}
}

func derefResult(r *StreamResult) StreamResult {
	if r == nil {
		return StreamResult{}
	}
	return *r
}

func (s *stream) note(key, format string, args ...any) {
	if s.opt.Note != nil && !s.noted[key] {
		s.noted[key] = true
		s.opt.Note(fmt.Sprintf(format, args...))
	}
}

// write writes a chunk. It returns the result once the stream is done,
// and more when the rest of the output is there already.
func (s *stream) write(ctx context.Context, chunk LogChunk) (done *StreamResult, more bool, err error) {
	if _, err := s.w.Write(chunk.Data); err != nil {
		return nil, false, fmt.Errorf("write the output of %s: %w", s.id, err)
	}
	s.offset += int64(len(chunk.Data))
	if s.offset < chunk.Size && len(chunk.Data) > 0 {
		return nil, true, nil
	}
	if !chunk.Final && s.opt.Follow {
		return nil, false, nil
	}
	if chunk.Note != "" && s.offset == 0 {
		s.note("final", "%s: %s", s.id, chunk.Note)
	}
	f, err := s.c.Fire(ctx, s.id)
	return &StreamResult{Fire: f}, false, err
}

// refused handles an error answer to a log request: stop says whether the
// stream ends with res and err, or waits and asks again.
func (s *stream) refused(ctx context.Context, err error) (res StreamResult, stop bool, _ error) {
	var ae *Error
	switch {
	case !errors.As(err, &ae):
		return res, true, err
	case errors.Is(err, ErrNotFound) && s.opt.Follow && s.opt.Attempt != 0 && s.ended(ctx):
		return res, true, err // no attempt follows an ended fire
	case errors.Is(err, ErrNotFound) && s.opt.Follow:
		// A requested run has no record until the leader plans it.
		if time.Since(s.start) > s.opt.SlowPlan {
			s.note("unplanned", "%s is not planned yet: waiting for the leader (is a scheduler running?)", s.id)
			if _, jerr := s.c.GetJob(ctx, s.id.Job); jerr != nil {
				return res, true, fmt.Errorf("%s will not run: %w", s.id, jerr)
			}
		}
		return res, false, nil
	case errors.Is(err, ErrConflict) && s.opt.Follow:
		s.note("unplaced", "%s waits: %s", s.id, ae.Message)
		return res, false, nil
	case errors.Is(err, ErrBadGateway):
		return s.executorGone(ctx, ae)
	}
	return res, true, err
}

// ended reports whether the fire has a record and no attempt can follow.
func (s *stream) ended(ctx context.Context) bool {
	f, err := s.c.Fire(ctx, s.id)
	return err == nil && f.State.Final() && f.Processed
}

// executorGone handles a log request the executor did not answer: once
// the fire has ended, what its record keeps is all there is.
func (s *stream) executorGone(ctx context.Context, ae *Error) (StreamResult, bool, error) {
	f, err := s.c.Fire(ctx, s.id)
	if err != nil {
		return StreamResult{Fire: f}, true, err
	}
	res := StreamResult{Fire: f, FromRecord: true}
	if s.opt.Attempt != 0 && s.opt.Attempt != f.Attempt {
		// The record keeps the tail of its latest attempt only.
		s.note("tail", "%s; the output of attempt %d is not kept elsewhere", ae.Message, s.opt.Attempt)
		return res, true, nil
	}
	if f.State.Final() {
		if s.offset > 0 {
			s.note("tail", "%s; the output may be incomplete", ae.Message)
			return res, true, nil
		}
		s.note("tail", "%s; printing the last %d bytes kept in the fire record", ae.Message, len(f.OutputTail))
		if _, err := io.WriteString(s.w, f.OutputTail); err != nil {
			return res, true, fmt.Errorf("write the output of %s: %w", s.id, err)
		}
		return res, true, nil
	}
	if !s.opt.Follow {
		return StreamResult{Fire: f}, true, ae
	}
	s.note("unreachable", "%s; still waiting", ae.Message)
	return StreamResult{}, false, nil
}
