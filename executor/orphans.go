package executor

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"go.uber.org/zap"
)

// killOrphans kills the runs a dead predecessor of this executor left
// behind. Every host run's environment names its node (AION_NODE) and its
// output file (AION_OUTPUT, inside the executor's output directory), and
// its children inherit both, so the sweep reads /proc/*/environ and kills
// the process group of every process that carries this node and a file in
// this output directory. No file per run is needed, a recycled PID cannot
// be mistaken for a run, and an executor of another cluster on this host —
// same node ID, its own output directory — is left alone. It must be called
// while holding the node's registration, which proves no live executor of
// this cluster is this node. Runs whose supervisor was adopted
// (adoptRuns) are theirs: adopted names them by runKey. The others have
// lost their supervisor, and the leader counts them lost.
func (x *Executor) killOrphans(adopted map[string]bool) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		x.log.Warn("look for runs left by a previous executor", zap.Error(err))
		return
	}
	dir, err := filepath.Abs(x.cfg.OutputDir)
	if err != nil {
		x.log.Warn("look for runs left by a previous executor", zap.Error(err))
		return
	}
	node := []byte("AION_NODE=" + x.cfg.NodeID)
	output := []byte("AION_OUTPUT=" + filepath.Clean(dir) + string(filepath.Separator))
	self, ownGroup := os.Getpid(), syscall.Getpgrp()
	killed := make(map[int]bool)
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil || !isRun(env, node, output) || adopted[runKey(variable(env, "AION_FIRE_ID="), variable(env, "AION_ATTEMPT="))] {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil || pgid <= 1 || pgid == ownGroup || killed[pgid] {
			continue
		}
		killed[pgid] = true
		if syscall.Kill(-pgid, syscall.SIGKILL) == nil {
			x.log.Warn("killed a run left by a previous executor without its supervisor", zap.Int("pgid", pgid),
				zap.String("fire", variable(env, "AION_FIRE_ID=")), zap.String("attempt", variable(env, "AION_ATTEMPT=")))
		}
	}
}

// runKey names an attempt, as AION_FIRE_ID and AION_ATTEMPT give it.
func runKey(fire, attempt string) string { return fire + " " + attempt }

// isRun reports whether a process environment (NUL-separated) is that of a
// run of this executor: it holds the node variable and an output file in
// the output directory.
func isRun(env, node, outputPrefix []byte) bool {
	hasNode, hasOutput := false, false
	for _, kv := range bytes.Split(env, []byte{0}) {
		hasNode = hasNode || bytes.Equal(kv, node)
		hasOutput = hasOutput || bytes.HasPrefix(kv, outputPrefix)
	}
	return hasNode && hasOutput
}

// variable returns the value of the variable whose "NAME=" is prefix.
func variable(env []byte, prefix string) string {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(prefix)); ok {
			return string(v)
		}
	}
	return ""
}
