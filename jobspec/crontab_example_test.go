package jobspec

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The comment above each job in testdata/jobs/crontab.yaml shows the
// crontab line it replaces. Each such line must run at the job's times, or
// the comment must say that crontab has no such line.
func TestCrontabExampleCommentsMatchTheJobs(t *testing.T) {
	const file = "../testdata/jobs/crontab.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	jobs, errs := Parse(file, data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	items := mappingValue(root.Content[0], "jobs").Content
	from := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC) // spans a DST change in Europe
	for i, item := range items {
		job := jobs[i]
		comment := strings.TrimSpace(strings.TrimPrefix(item.HeadComment, "#"))
		if strings.HasPrefix(comment, "no crontab line") {
			continue
		}
		fields := strings.Fields(comment)
		expr := strings.Join(fields[:min(5, len(fields))], " ")
		if strings.HasPrefix(comment, "@") {
			expr = fields[0]
		}
		want, err := ParseCron(expr, job.Location(), false)
		if err != nil {
			t.Errorf("%s: comment %q is not a crontab line: %v", job.Name, comment, err)
			continue
		}
		got, err := job.ParsedSchedule(from)
		if err != nil {
			t.Fatal(err)
		}
		wantTimes, _ := Between(want, from, from.AddDate(0, 0, 14), 20)
		gotTimes, _ := Between(got, from, from.AddDate(0, 0, 14), 20)
		if len(wantTimes) != len(gotTimes) {
			t.Errorf("%s: comment %q runs %v, the job %v", job.Name, comment, wantTimes, gotTimes)
			continue
		}
		for k := range wantTimes {
			if !wantTimes[k].Equal(gotTimes[k]) {
				t.Errorf("%s: comment %q runs at %v, the job at %v", job.Name, comment, wantTimes[k], gotTimes[k])
				break
			}
		}
	}
}
