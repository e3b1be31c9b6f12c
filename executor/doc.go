// Package executor is the node agent of Aion: the process on each machine
// that runs the fires the leader dispatches to it. It owns, for its node:
//
//   - registration: the node's key in etcd, on a lease kept alive while the
//     executor lives; when the lease is lost it kills its runs (the leader
//     counts them as lost) and registers again;
//   - load reports over NATS every LoadEvery, which the leader places fires by;
//   - claiming: a dispatched fire starts only after an etcd transaction
//     moved its record from planned to running, so each attempt starts at
//     most once (claims and results of many fires share transactions);
//   - running: a shell command or argv on the host through the node's
//     supervisor (package supervisor: a process that outlives the executor
//     and kills a run when the executor has been silent for Fence; the
//     executor beats it only while its lease is surely alive), or a
//     container through package containerizer, with the job's environment
//     (AION_FENCE: the claim's revision), workdir, user and timeout; kill
//     requests over NATS, checked against etcd, stop it;
//   - output: a tail in the fire record and the rest in a file on disk
//     (0600, created only when a run writes something, capped at the job's
//     output_limit or OutputLimit), served to `aion logs` over NATS and
//     deleted after OutputRetention; output cut at the limit or not kept
//     (a full disk, a directory that cannot be made) is said in the record;
//   - results, written with a transaction guarded by the claim, so a run the
//     leader marked lost meanwhile is not overwritten;
//   - taking over from a dead predecessor on the same node, once the new
//     executor holds the registration: the supervisor's runs still going
//     are adopted (their records re-stamped with the new lease), those
//     that ended are recorded, its containers are removed and their runs
//     recorded lost.
//
// It does not decide what runs where or when: that is the leader's (package
// scheduler), and job definitions are package jobspec's.
//
//	x := executor.New(cfg, etcdClient, natsConn, logger)
//	err := x.Run(ctx) // until ctx ends; running jobs get SIGTERM, then SIGKILL after cfg.Grace
package executor
