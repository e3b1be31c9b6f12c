package jobspec_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aionsched/aion/jobspec"
)

// printNext prints the first n nominal times of s after from.
func printNext(s jobspec.Schedule, from time.Time, n int) {
	for t := s.Next(from); !t.IsZero() && n > 0; t, n = s.Next(t), n-1 {
		fmt.Println(" ", t.Format(time.RFC3339))
	}
}

// A cron expression is computed in its time zone: 02:30 in Berlin does not
// exist on the spring-forward night, so that night's run is at the jump
// (03:00 CEST), as ISC cron does.
func ExampleParseSchedule_cron() {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := jobspec.ParseSchedule("30 2 * * *", jobspec.Options{Location: berlin})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	printNext(s, time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 3)
	// Output:
	// 30 2 * * *
	//   2026-03-28T02:30:00+01:00
	//   2026-03-29T03:00:00+02:00
	//   2026-03-30T02:30:00+02:00
}

// With CronSeconds a six-field expression starts with seconds.
func ExampleParseSchedule_cronSeconds() {
	s, err := jobspec.ParseSchedule("*/20 * * * * *", jobspec.Options{CronSeconds: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	printNext(s, time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC), 3)
	// Output:
	//   2026-01-01T00:00:20Z
	//   2026-01-01T00:00:40Z
	//   2026-01-01T00:01:00Z
}

// @every is anchored at the Unix epoch, not at the time it is parsed, so
// every leader computes the same times.
func ExampleParseSchedule_every() {
	s, err := jobspec.ParseSchedule("@every 90m", jobspec.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	printNext(s, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 3)
	// Output:
	//   2026-01-01T01:30:00Z
	//   2026-01-01T03:00:00Z
	//   2026-01-01T04:30:00Z
}

// An ISO 8601 repeating interval runs its count of times from its start;
// after the last one Next returns the zero time.
func ExampleParseSchedule_iso8601() {
	s, err := jobspec.ParseSchedule("R5/2026-01-01T00:00:00Z/P1D", jobspec.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	printNext(s, time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), 10)
	last := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	fmt.Println("after the last:", s.Next(last).IsZero())
	// Output:
	//   2026-01-01T00:00:00Z
	//   2026-01-02T00:00:00Z
	//   2026-01-03T00:00:00Z
	//   2026-01-04T00:00:00Z
	//   2026-01-05T00:00:00Z
	// after the last: true
}

// A bad expression says what is wrong with it.
func ExampleParseSchedule_invalid() {
	_, err := jobspec.ParseSchedule("61 * * * *", jobspec.Options{})
	fmt.Println(err)
	// Output:
	// cron "61 * * * *": minute: end of range (61) above maximum (59): 61
}

// Load reads every job file below a directory and validates the set.
func ExampleLoad() {
	jobs, err := jobspec.Load("../testdata/jobs")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, j := range jobs {
		schedule := j.Schedule
		if schedule == "" {
			schedule = "after " + strings.Join(j.Parents, ", ")
		}
		fmt.Printf("%s: %s\n", j.Name, schedule)
	}
	// Output:
	// backup: 30 2 * * *
	// build-report: after clean-orders, clean-customers
	// clean-customers: after extract
	// clean-orders: after extract
	// container-hello: manual
	// disk-usage: */15 * * * *
	// extract: 0 1 * * *
	// heartbeat: */10 * * * * *
	// reindex: manual
	// rotate-logs: @weekly
	// sync-mirror: R/2026-01-01T00:00:00Z/PT6H
	// weekday-report: 0 7 * * 1-5
}

// A set with problems loads no job; the error lists every problem with its
// file, line and column.
func ExampleLoad_errors() {
	dir, err := os.MkdirTemp("", "jobs-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"good.yaml": "name: fine\nschedule: \"@daily\"\ncommand: \"true\"\n",
		"bad.yaml": "jobs:\n" +
			"  - name: Backup\n" +
			"    schedule: \"0 25 * * *\"\n" +
			"    command: \"true\"\n" +
			"  - name: child\n" +
			"    parents: [nobody]\n" +
			"    command: \"true\"\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}
	jobs, err := jobspec.Load(dir)
	fmt.Println(len(jobs), "jobs loaded")
	var list jobspec.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Println(strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
		}
	}
	// Output:
	// 0 jobs loaded
	// bad.yaml:2:11: name: "Backup" is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit
	// bad.yaml:3:15: schedule: cron "0 25 * * *": hour: end of range (25) above maximum (23): 25
	// bad.yaml:6:15: parents[0]: unknown job "nobody"
}
