package main

// The exit codes of aion, in one place (docs/jobs.md, "Exit codes", and
// `aion --help` list them). They follow `docker run`: the job's own exit
// code passes through `aion run --wait`, Aion's own failures are 125, and a
// command that could not be invoked or was not found is 126 or 127 as the
// shell reports them.
const (
	exitOK = 0
	// exitFailure: the command ran and reports a failure that is not
	// Aion's (job files with problems for validate and dev).
	exitFailure = 1
	// exitUsage: a bad flag, argument or configuration.
	exitUsage = 2
	// exitTimedOut: the run was killed after the job's timeout (as timeout(1)).
	exitTimedOut = 124
	// exitAion: Aion failed or refused: the API answered with an error
	// (an unknown job, a bad request), could not be reached, or the run
	// ended without an exit code of its own (lost, skipped, cancelled).
	exitAion = 125
	// exitCannotInvoke: the job's program exists but could not be run.
	exitCannotInvoke = 126
	// exitNotFound: the job's program was not found.
	exitNotFound = 127
)

// exitCodesHelp is the part of `aion --help` that lists the exit codes.
const exitCodesHelp = `Exit codes:
  0    success
  1    the command's own failure (e.g. job files with problems)
  2    usage error: a bad flag, argument or configuration
  N    aion run --wait: the job's own exit code (1-255)
  124  aion run --wait: the run timed out
  125  Aion error: the API refused (unknown job, bad request) or could not be reached,
       or the run ended without an exit code (lost, skipped, cancelled)
  126  aion run --wait: the job's program could not be invoked
  127  aion run --wait: the job's program was not found`
