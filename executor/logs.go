package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// outputPath is where the full output of one attempt of a fire is kept on
// this node.
func (x *Executor) outputPath(id store.FireID, attempt int) string {
	return filepath.Join(x.cfg.OutputDir, id.Job, fmt.Sprintf("%s.%d.log", id.Suffix, max(attempt, 1)))
}

// serveLogs answers LogRequests for the output of runs on this node; only
// requests signed with key (see store.LogRequest.Verify) get output, any
// other an error answer.
func (x *Executor) serveLogs(key []byte) (*nats.Subscription, error) {
	return x.nats.Subscribe(store.LogSubject(x.cfg.SubjectPrefix, x.cfg.NodeID), func(m *nats.Msg) {
		var req store.LogRequest
		var chunk store.LogChunk
		if err := json.Unmarshal(m.Data, &req); err != nil {
			chunk.Error = "bad log request: " + err.Error()
		} else if err := req.Verify(key, time.Now()); err != nil {
			chunk.Error = err.Error()
			x.log.Warn("log request refused", zap.Stringer("fire", req.Fire), zap.Error(err))
		} else {
			chunk = x.readChunk(req)
		}
		data, err := json.Marshal(chunk)
		if err != nil { // bytes, a size and a string: it cannot fail
			x.log.Error("encode log chunk; not answered", zap.Stringer("fire", req.Fire), zap.Error(err))
			return
		}
		_ = m.Respond(data)
	})
}

func (x *Executor) readChunk(req store.LogRequest) store.LogChunk {
	if err := req.Fire.Validate(); err != nil {
		return store.LogChunk{Error: "bad log request: " + err.Error()} // never a path outside OutputDir
	}
	f, err := os.Open(x.outputPath(req.Fire, req.Attempt))
	if errors.Is(err, os.ErrNotExist) {
		return store.LogChunk{Error: "no output kept for " + req.Fire.String() + " on " + x.cfg.NodeID}
	}
	if err != nil {
		return store.LogChunk{Error: err.Error()}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return store.LogChunk{Error: err.Error()}
	}
	offset := min(max(req.Offset, 0), info.Size())
	data, err := io.ReadAll(io.NewSectionReader(f, offset, min(info.Size()-offset, store.MaxLogChunk)))
	if err != nil {
		return store.LogChunk{Error: err.Error()}
	}
	return store.LogChunk{Data: data, Size: info.Size()}
}

// sweepOutput deletes output files older than OutputRetention, except those
// of runs still going on this node.
func (x *Executor) sweepOutput(now time.Time) {
	if x.cfg.OutputRetention == 0 {
		return
	}
	x.mu.Lock()
	running := make(map[string]bool, len(x.running))
	for id := range x.running {
		running[filepath.Join(x.cfg.OutputDir, id.Job)+string(filepath.Separator)+id.Suffix+"."] = true
	}
	x.mu.Unlock()
	deleted := 0
	_ = filepath.WalkDir(x.cfg.OutputDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == runsDir {
			return filepath.SkipDir // supervisors' files: each run's own, removed with it
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		info, err := d.Info()
		if err != nil || now.Sub(info.ModTime()) < x.cfg.OutputRetention {
			return nil
		}
		for prefix := range running {
			if strings.HasPrefix(p, prefix) {
				return nil
			}
		}
		if os.Remove(p) == nil {
			deleted++
		}
		return nil
	})
	if deleted > 0 {
		x.log.Info("old output deleted", zap.Int("files", deleted), zap.Duration("retention", x.cfg.OutputRetention))
	}
}
