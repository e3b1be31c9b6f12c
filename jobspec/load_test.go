package jobspec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/invalid")

// TestLoad_GoldenErrors loads every case in testdata/invalid (a file, or a
// directory of files loaded together) and compares the full error list with
// its .golden file. Run with -update after an intended change of wording.
func TestLoad_GoldenErrors(t *testing.T) {
	t.Chdir("..") // paths in messages are relative to the repository root
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ".yaml")
		t.Run(name, func(t *testing.T) {
			jobs, err := Load(filepath.Join("testdata/invalid", e.Name()))
			if err == nil {
				t.Fatalf("Load succeeded with %d jobs, want errors", len(jobs))
			}
			if jobs != nil {
				t.Errorf("Load returned %d jobs along with errors; a bad set must apply nothing", len(jobs))
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := filepath.Join("testdata/invalid", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test ./jobspec -run Golden -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestLoad_Examples(t *testing.T) {
	jobs, err := Load("../testdata/jobs")
	if err != nil {
		t.Fatalf("example jobs do not validate:\n%v", err)
	}
	byName := make(map[string]*Job)
	for _, j := range jobs {
		byName[j.Name] = j
	}
	for _, name := range []string{"heartbeat", "backup", "extract", "clean-orders", "clean-customers", "build-report", "container-hello", "reindex", "sync-mirror"} {
		if byName[name] == nil {
			t.Errorf("example job %q missing", name)
		}
	}
	backup := byName["backup"]
	if backup == nil {
		t.FailNow()
	}
	if got, want := backup.Retries.Count, 3; got != want {
		t.Errorf("backup retries = %d, want %d", got, want)
	}
	if got, want := backup.Misfire.StartingDeadline.D(), 6*time.Hour; got != want {
		t.Errorf("backup starting deadline = %s, want %s", got, want)
	}
	if got := byName["build-report"].Parents; strings.Join(got, ",") != "clean-orders,clean-customers" {
		t.Errorf("build-report parents = %v", got)
	}
	if c := byName["container-hello"].Container; c == nil || c.Image != "aion-hello:latest" || c.Pull != PullNever {
		t.Errorf("container-hello container = %+v", c)
	}
	if got, want := byName["clean-orders"].Resources.Memory, Bytes(512<<20); got != want {
		t.Errorf("clean-orders memory = %d, want %d", got, want)
	}
}

func TestLoad_Defaults(t *testing.T) {
	jobs, errs := Parse("mem.yaml", []byte("name: x\nschedule: manual\ncommand: 'true'\ncontainer: {image: alpine}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	j := jobs[0]
	checks := []struct {
		field     string
		got, want any
	}{
		{"timezone", j.Timezone, "UTC"},
		{"concurrency", j.Concurrency, ConcurrencyForbid},
		{"misfire.policy", j.Misfire.Policy, MisfireRunOnce},
		{"misfire.max_catchup", j.Misfire.MaxCatchup, DefaultMaxCatchup},
		{"retries.count", j.Retries.Count, 0},
		{"retries.backoff.initial", j.Retries.Backoff.Initial.D(), DefaultBackoffInitial},
		{"retries.backoff.max", j.Retries.Backoff.Max.D(), DefaultBackoffMax},
		{"container.pull", j.Container.Pull, PullMissing},
		{"timeout", j.Timeout.D(), time.Duration(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

func TestLoad_OneBadFileAppliesNothing(t *testing.T) {
	dir := t.TempDir()
	good := "name: good\nschedule: '@daily'\ncommand: 'true'\n"
	bad := "name: bad\nschedule: '@daily'\ncommand: 'true'\ntimout: 5m\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs, err := Load(dir)
	if err == nil || jobs != nil {
		t.Fatalf("Load = %d jobs, %v; want no jobs and an error", len(jobs), err)
	}
	want := filepath.Join(dir, "b.yml") + `:4:1: timout: unknown field (did you mean "timeout"?)`
	if err.Error() != want {
		t.Errorf("error = %q\nwant   %q", err, want)
	}
}

func TestLoad_MissingPath(t *testing.T) {
	_, err := Load("does/not/exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "does/not/exist.yaml") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error = %v, want the path and 'no such file'", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../testdata/jobs", "../testdata/invalid"} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".yaml") {
				if data, err := os.ReadFile(p); err == nil {
					f.Add(data)
				}
			}
			return nil
		})
	}
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("jobs: [{name: a, parents: [a]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, errs := Parse("fuzz.yaml", data)
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Msg == "" {
				t.Fatalf("malformed error %+v", e)
			}
		}
		errs = append(errs, CheckSet(jobs)...)
		if len(errs) == 0 {
			for _, j := range jobs {
				if !validName.MatchString(j.Name) {
					t.Fatalf("accepted job with bad name %q", j.Name)
				}
				if (j.Command == "") == (len(j.Args) == 0) && j.Container == nil {
					t.Fatalf("accepted job %q without exactly one of command/args", j.Name)
				}
			}
		}
	})
}
