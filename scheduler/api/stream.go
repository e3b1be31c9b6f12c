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
	// PollEvery and SlowPlan default to DefaultPollEvery and DefaultSlowPlan.
	PollEvery, SlowPlan time.Duration
}

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
	s := &stream{c: c, id: id, w: w, opt: opt, noted: make(map[string]bool), start: time.Now()}
	attempt := 0
	for {
		chunk, err := c.LogAttempt(ctx, id, opt.Attempt, s.offset)
		if err == nil {
			if attempt != 0 && chunk.Attempt != attempt {
				s.note(fmt.Sprintf("attempt %d", chunk.Attempt), "%s: attempt %d", id, chunk.Attempt)
				attempt, s.offset = chunk.Attempt, 0
				continue
			}
			attempt = chunk.Attempt
			done, more, err := s.write(ctx, chunk)
			if err != nil || done != nil {
				return derefResult(done), err
			}
			if more {
				continue
			}
		} else if res, stop, err := s.refused(ctx, err); stop {
			return res, err
		}
		select {
		case <-ctx.Done():
			return StreamResult{}, ctx.Err()
		case <-time.After(opt.PollEvery):
		}
	}
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
