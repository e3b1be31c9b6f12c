// Command aion-supervise is the supervisor of an executor node's runs
// (package executor/supervisor), as a program of its own: it links
// nothing but the supervisor and the Docker client (to kill fenced
// containers), so it starts in a few milliseconds and holds little
// memory, where the aion binary, which links etcd, NATS and gRPC, spends
// about 25 ms initializing their packages before main. An
// executor uses it when it is installed next to the aion binary (or named
// by executor.supervisor); otherwise it runs its supervisor from aion
// itself, which works the same.
package main

import (
	"os"

	"github.com/aionsched/aion/executor/supervisor"
)

func main() { os.Exit(supervisor.Main(os.Args[1:])) }
