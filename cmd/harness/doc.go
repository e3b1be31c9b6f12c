// Package harness holds the packages that compose the whole system —
// scheduler, executor, etcd and NATS — for `aion dev`, `aion bench` and
// the tests that need all of it:
//
//	embedded     real etcd and NATS servers in this process
//	clustertest  a test cluster: servers, clients, schedulers, executors, processes
//	bench        end-to-end measurements (`aion bench`)
//	reliability  fault scenarios and the checkers that judge them
//	runlog       the log jobs in tests keep of their own runs: starts, ends, overlaps
//	testcerts    a certificate authority and the certificates it signs, for TLS tests
//
// They sit under cmd/ because they import both sides: nothing in
// scheduler/, executor/ or jobspec/ imports them except tests.
package harness
