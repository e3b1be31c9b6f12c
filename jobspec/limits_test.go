package jobspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// problems parses one file and checks the set, returning every problem as
// the CLI prints it.
func problems(t *testing.T, file, data string) []string {
	t.Helper()
	jobs, errs := Parse(file, []byte(data))
	errs = append(errs, CheckSet(jobs)...)
	errs.sort()
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return lines
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && len(got)+len(want) > 0 {
		t.Errorf("problems:\ngot\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLimits_AtTheLimitIsAcceptedOneByteOverIsRefused checks each size
// limit on both sides, with the position and wording of the problem.
func TestLimits_AtTheLimitIsAcceptedOneByteOverIsRefused(t *testing.T) {
	parentJobs := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "  - name: p%d\n    schedule: manual\n    command: \"true\"\n", i)
		}
		return b.String()
	}
	parentNames := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("p%d", i)
		}
		return strings.Join(names, ", ")
	}
	tests := []struct {
		name string
		file func(n int) string // the file with the value at size n
		at   int                // the limit
		want string             // the problem at size at+1
	}{
		{"command", func(n int) string {
			return "name: big\nschedule: manual\ncommand: " + strings.Repeat("x", n) + "\n"
		}, MaxCommandBytes, "f.yaml:3:10: command: too long: 65537 bytes, the limit is 65536"},
		{"args", func(n int) string {
			return "name: big\nschedule: manual\nargs: [echo, " + strings.Repeat("x", n-4) + "]\n"
		}, MaxCommandBytes, "f.yaml:3:7: args: too long: 65537 bytes, the limit is 65536"},
		{"env", func(n int) string {
			return "name: big\nschedule: manual\ncommand: env\nenv:\n  A: " + strings.Repeat("x", n/2-1) + "\n  B: " + strings.Repeat("y", n-n/2-1) + "\n"
		}, MaxEnvBytes, "f.yaml:5:3: env: too large: 65537 bytes, the limit is 65536"},
		{"description", func(n int) string {
			return "name: big\nschedule: manual\ncommand: \"true\"\ndescription: " + strings.Repeat("d", n) + "\n"
		}, MaxTextBytes, "f.yaml:4:14: description: too long: 4097 bytes, the limit is 4096"},
		{"owner", func(n int) string {
			return "name: big\nschedule: manual\ncommand: \"true\"\nowner: " + strings.Repeat("o", n) + "\n"
		}, MaxTextBytes, "f.yaml:4:8: owner: too long: 4097 bytes, the limit is 4096"},
		{"parents", func(n int) string {
			return "jobs:\n" + parentJobs(n) + "  - name: child\n    command: \"true\"\n    parents: [" + parentNames(n) + "]\n"
		}, MaxParents, "f.yaml:199:14: parents: too many parents: 65, the limit is 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblems(t, problems(t, "f.yaml", tt.file(tt.at)))
			wantProblems(t, problems(t, "f.yaml", tt.file(tt.at+1)), tt.want)
		})
	}
}

// TestLimits_AJobTooLargeAsStoredIsRefusedAtItsStart covers what the field
// limits leave open: fields without their own limit that add up.
func TestLimits_AJobTooLargeAsStoredIsRefusedAtItsStart(t *testing.T) {
	image := strings.Repeat("i", MaxJobBytes)
	single := "name: huge\nschedule: manual\ncontainer:\n  image: " + image + "\n"
	got := problems(t, "f.yaml", single)
	var size int
	if len(got) != 1 {
		t.Fatalf("problems %q, want one", got)
	}
	if _, err := fmt.Sscanf(got[0], "f.yaml:1:1: job huge is too large: %d bytes as stored, the limit is 1048576 (shorten its long values and lists)", &size); err != nil || size <= MaxJobBytes {
		t.Errorf("problem %q (%v)", got[0], err)
	}

	var labels strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&labels, "      k%d: %s\n", i, strings.Repeat("v", 50))
	}
	list := "jobs:\n  - name: small\n    schedule: manual\n    command: \"true\"\n  - name: labelled\n    schedule: manual\n    command: \"true\"\n    labels:\n" + labels.String()
	got = problems(t, "f.yaml", list)
	if len(got) != 1 || !strings.HasPrefix(got[0], "f.yaml:5:5: jobs[1]: job labelled is too large: ") {
		t.Errorf("problems %q, want one at the start of jobs[1]", got)
	}
	// The same job split below the limit is fine.
	small := strings.Replace(single, image, strings.Repeat("i", MaxJobBytes/2), 1)
	wantProblems(t, problems(t, "f.yaml", small))
}

func TestLimits_AFileOverMaxFileSizeIsRefusedUnread(t *testing.T) {
	dir := t.TempDir()
	job := "name: padded\nschedule: manual\ncommand: \"true\"\n"
	pad := func(n int) string { return job + "#" + strings.Repeat(" ", n-len(job)-2) + "\n" }
	at, over := filepath.Join(dir, "at.yaml"), filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(at, []byte(pad(MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(over, []byte(pad(MaxFileSize+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if jobs, err := Load(at); err != nil || len(jobs) != 1 {
		t.Errorf("a file of exactly %d bytes: %d jobs, %v", MaxFileSize, len(jobs), err)
	}
	jobs, err := Load(at, over)
	if jobs != nil || err == nil || err.Error() != over+": file larger than 4194304 bytes" {
		t.Errorf("with a file one byte over: %d jobs, error %v", len(jobs), err)
	}
}

// TestLimits_AliasesCannotExpandASmallFileIntoMillionsOfValues: before the
// budget, this 85 KB file took minutes and gigabytes to decode.
func TestLimits_AliasesCannotExpandASmallFileIntoMillionsOfValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("jobs:\n  - &j\n    name: a\n    schedule: manual\n    command: x\n    env:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "      K%d: v\n", i)
	}
	for range 20_000 {
		b.WriteString("  - *j\n")
	}
	start := time.Now()
	got := problems(t, "f.yaml", b.String())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	// A copy of the job is 4009 values: 24 copies fit in the budget, the
	// 25th (jobs[25], at line 2031) does not; the 24 copies repeat a name.
	want := `f.yaml:2031:5: jobs[25]: alias *j: the aliases in this file expand to more than 100000 values`
	if len(got) != 25 || !slices.Contains(got, want) {
		t.Errorf("%d problems, want 25 with %q; first %q", len(got), want, got[:min(3, len(got))])
	}

	// An alias inside its own anchor expands forever: refused, and counting
	// it ends. Nested aliases are charged once, at the outermost.
	wantProblems(t, problems(t, "f.yaml", "name: a\nschedule: manual\nargs: &x [*x]\n"),
		`f.yaml:3:7: args[0]: the program to run must not be empty`,
		`f.yaml:3:11: args[0]: alias *x: the aliases in this file expand to more than 100000 values`)
	nested := "name: a\nschedule: manual\ncommand: x\nlabels: &l {a: &v b}\nnotify: {on_failure: [&u 'http://x', *u, *u]}\n"
	wantProblems(t, problems(t, "f.yaml", nested))

	// Sharing blocks between jobs, what aliases are for, still works.
	shared := "jobs:\n  - name: a\n    schedule: manual\n    command: x\n    env: &env {A: \"1\", B: \"2\"}\n" +
		"  - name: b\n    schedule: manual\n    command: x\n    env: *env\n  - name: c\n    parents: [a, b]\n    command: x\n    env: *env\n"
	jobs, errs := Parse("f.yaml", []byte(shared))
	if len(errs) > 0 || len(jobs) != 3 || jobs[2].Env["B"] != "2" {
		t.Errorf("shared env: %d jobs, %v", len(jobs), errs)
	}
}

// TestNames_WildcardsDotsSpacesAndSlashesAreRefused: job names become etcd
// key segments and NATS subject tokens (aion.events.<job>), so none of
// these may pass, as a name or as a parent.
func TestNames_WildcardsDotsSpacesAndSlashesAreRefused(t *testing.T) {
	bad := []string{"orders.>", ">", "*", "a*", "a.b", "a b", "a\tb", "a/b", "../etc", ".hidden", "a\x00b", "Upper", "-lead", strings.Repeat("a", 64), "é"}
	for _, name := range bad {
		if ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
		quoted := fmt.Sprintf("%q", name) // a YAML double-quoted string reads back as the Go one
		got := problems(t, "f.yaml", "name: "+quoted+"\nschedule: manual\ncommand: \"true\"\n")
		wantProblems(t, got, fmt.Sprintf("f.yaml:1:7: name: %s is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", quoted))
		got = problems(t, "f.yaml", "name: child\ncommand: \"true\"\nparents: ["+quoted+"]\n")
		wantProblems(t, got, fmt.Sprintf("f.yaml:3:11: parents[0]: %s is not a valid job name", quoted))
	}
	for _, name := range []string{"a", "0", "backup-db_2", strings.Repeat("a", 63)} {
		if !ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
}

// TestLoad_AFileThatFailsHalfwayLoadsNothing: the golden case
// fails-halfway has valid jobs first and its last file ends with a YAML
// error, after a job that closes a cycle through the first file.
func TestLoad_AFileThatFailsHalfwayLoadsNothing(t *testing.T) {
	jobs, err := Load("../testdata/invalid/fails-halfway")
	var list ErrorList
	if jobs != nil || !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("Load = %d jobs, %v; want no jobs and 2 problems", len(jobs), err)
	}
}
