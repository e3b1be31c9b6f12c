package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfig_InvalidIsUsageError(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		name    string
		file    string // config file content; "" for no --config
		env     map[string]string
		flags   []string
		inError []string
	}{
		{
			name:    "bad level in file",
			file:    "log: {level: nope}\n",
			inError: []string{"log.level", `"nope"`},
		},
		{
			name:    "bad format in environment",
			env:     map[string]string{"AION_LOG_FORMAT": "xml"},
			inError: []string{"log.format", `"xml"`},
		},
		{
			name:    "bad level in environment",
			env:     map[string]string{"AION_LOG_LEVEL": "loud"},
			inError: []string{"log.level", `"loud"`},
		},
		{
			name:    "bad level flag",
			flags:   []string{"--log-level", "nope"},
			inError: []string{"log.level", `"nope"`},
		},
		{
			name:    "unknown key in file",
			file:    "log:\n  level: info\nsevrer: http://127.0.0.1:8080\n",
			inError: []string{"sevrer"},
		},
		{
			name:    "unknown nested key in file",
			file:    "log:\n  levle: debug\n",
			inError: []string{"levle"},
		},
		{
			name:    "YAML syntax error in file",
			file:    "log: [level: debug\n",
			inError: []string{"config.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := slices.Clone(tt.flags)
			if tt.file != "" {
				path := writeFile(t, t.TempDir(), "config.yaml", tt.file)
				args = append(args, "--config", path)
			}
			args = append(args, "version")
			code, stdout, stderr := runAion(t, args...)
			if got, want := code, 2; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty: the command must not run", stdout)
			}
			for _, s := range tt.inError {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr: got %q, want it to contain %q", stderr, s)
				}
			}
		})
	}

	t.Run("missing config file", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.yaml")
		code, stdout, stderr := runAion(t, "--config", missing, "version")
		if got, want := code, 2; got != want {
			t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
		}
		if stdout != "" {
			t.Errorf("stdout: got %q, want empty", stdout)
		}
		if !strings.Contains(stderr, missing) {
			t.Errorf("stderr: got %q, want it to name %s", stderr, missing)
		}
	})
}

func TestConfig_ValidSources(t *testing.T) {
	shipped, err := filepath.Abs("../../configs/aion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		file string // written to --config when not ""
		env  map[string]string
		args []string
	}{
		{name: "shipped configs/aion.yaml", args: []string{"--config", shipped}},
		{name: "json debug file", file: "log:\n  level: debug\n  format: json\nserver: http://10.0.0.1:8080\n"},
		{name: "environment", env: map[string]string{"AION_LOG_LEVEL": "warn", "AION_LOG_FORMAT": "json", "AION_SERVER": "http://x:1"}},
		{name: "flag wins over environment", env: map[string]string{"AION_LOG_LEVEL": "nope"}, args: []string{"--log-level", "debug"}},
		{name: "environment wins over file", file: "log: {format: xml}\n", env: map[string]string{"AION_LOG_FORMAT": "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := slices.Clone(tt.args)
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, t.TempDir(), "config.yaml", tt.file))
			}
			args = append(args, "version")
			code, stdout, stderr := runAion(t, args...)
			if got, want := code, 0; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if got, want := stdout, "aion dev\n"; !strings.HasPrefix(got, want) { // then the build details
				t.Errorf("stdout: got %q, want %q", got, want)
			}
		})
	}
}

// TestConfig_DefaultSearch checks the default config locations: ./aion.yaml
// and configs/aion.yaml are read, and nothing else named aion is.
func TestConfig_DefaultSearch(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantCode int
	}{
		{"no config file", nil, 0},
		{"bad ./aion.yaml is read", map[string]string{"aion.yaml": "log: {level: nope}\n"}, 2},
		{"bad configs/aion.yaml is read", map[string]string{"configs/aion.yaml": "log: {level: nope}\n"}, 2},
		{"good ./aion.yaml is read", map[string]string{"aion.yaml": "log: {level: debug}\n"}, 0},
		// go build ./cmd/aion leaves the binary as ./aion in the repository
		// root (see .gitignore); it is not a config file.
		{"binary named aion is not a config file", map[string]string{"aion": "\x7fELF\x02\x01\x01\x00binary"}, 0},
		{"directory named configs/aion is not a config file", map[string]string{"configs/aion/x": "junk"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Dir(path), filepath.Base(path), content)
			}
			t.Chdir(dir)
			code, stdout, stderr := runAion(t, "version")
			if got, want := code, tt.wantCode; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if tt.wantCode == 0 {
				if got, want := stdout, "aion dev\n"; !strings.HasPrefix(got, want) { // then the build details
					t.Errorf("stdout: got %q, want %q", got, want)
				}
			}
		})
	}
}
