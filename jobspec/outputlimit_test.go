package jobspec

import "testing"

// TestOutputLimit_SizesParseAndBadOnesNameTheLineAndField: output_limit
// takes the sizes a user writes (10MiB, 512Ki, 1M, plain bytes); a bad
// one, or 0, is refused at its file, line and field.
func TestOutputLimit_SizesParseAndBadOnesNameTheLineAndField(t *testing.T) {
	for text, want := range map[string]Bytes{
		"10MiB": 10 << 20, "512Ki": 512 << 10, "64KiB": 64 << 10, "1M": 1_000_000, "2GB": 2_000_000_000, "4096": 4096, "100B": 100,
	} {
		jobs, errs := Parse("jobs.yaml", []byte("name: a\nschedule: manual\ncommand: date\noutput_limit: "+text+"\n"))
		if len(errs) > 0 || len(jobs) != 1 {
			t.Errorf("output_limit %s: %v", text, errs)
			continue
		}
		if jobs[0].OutputLimit != want {
			t.Errorf("output_limit %s: got %d bytes, want %d", text, jobs[0].OutputLimit, want)
		}
	}
	jobs, errs := Parse("jobs.yaml", []byte("name: a\nschedule: manual\ncommand: date\n"))
	if len(errs) > 0 || jobs[0].OutputLimit != 0 {
		t.Errorf("no output_limit: %d, %v; want 0 (the executor's limit)", jobs[0].OutputLimit, errs)
	}

	wantProblems(t, problems(t, "jobs.yaml", "name: a\nschedule: manual\ncommand: date\noutput_limit: lots\n"),
		`jobs.yaml:4:15: output_limit: bad size "lots": want bytes or a number with Ki, Mi, Gi, Ti, K, M, G or T (B optional), e.g. 512Mi or 10MiB`)
	wantProblems(t, problems(t, "jobs.yaml", "name: a\nschedule: manual\ncommand: date\noutput_limit: 0\n"),
		`jobs.yaml:4:15: output_limit: must be more than 0; leave it out for the executor's limit`)
}
