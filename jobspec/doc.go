// Package jobspec owns Aion's job model: decoding YAML job files strictly,
// validating them with file:line:col errors, and computing schedules.
//
// It is pure: it reads files and nothing else (no etcd, no NATS), so the
// scheduler, the CLI and the API all validate jobs the same way.
//
//	jobs, err := jobspec.Load("/etc/aion/jobs") // every *.yaml and *.yml below
//	if err != nil {
//		fmt.Println(err) // one "file:line:col: field: message" per problem
//		return
//	}
//	s, _ := jobs[0].ParsedSchedule(appliedAt) // nil for manual and dependent jobs
//	next := s.Next(time.Now())
//
// # Schedules
//
// A Schedule gives the first nominal time strictly after a time. Three kinds
// exist: CronSchedule (five fields, or six with cron_seconds, and the
// descriptors @yearly … @hourly), EverySchedule (@every, anchored at the Unix
// epoch so every leader computes the same times) and ISOSchedule (ISO 8601
// repeating intervals R[n]/start/period, as Chronos accepts them).
//
// # Time zones and DST
//
// Schedules compute in the job's IANA zone. Cron follows ISC cron: a job
// whose second, minute and hour fields are fixed fires once at a wall time
// the clock jumps over (at the jump) and once at a wall time the clock
// repeats (its first occurrence); a job with a wildcard or step in those
// fields fires at every instant whose wall reading matches, which keeps the
// real spacing. ISO 8601 periods with years, months, weeks or days keep the
// wall time; hours, minutes and seconds are elapsed time. robfig/cron/v3
// parses cron fields, but its own Next skips times removed by a DST jump, so
// the search for the next time is this package's.
package jobspec
