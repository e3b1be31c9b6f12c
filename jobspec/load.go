package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds one job file; larger files are refused unread.
const MaxFileSize = 4 << 20

// Load reads job files and directories (recursively, *.yaml and *.yml) and
// validates the whole set. On any problem it returns every problem found as
// an ErrorList and no jobs, so a caller never applies part of a set.
func Load(paths ...string) ([]*Job, error) {
	jobs, errs := Read(paths...)
	errs = append(errs, CheckSet(jobs)...)
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	return jobs, nil
}

// Read reads job files and directories as Load does, and checks each job,
// but not the set (CheckSet): for jobs added to stored ones, whose parents
// may be stored. It returns the jobs read and the problems found, sorted.
func Read(paths ...string) ([]*Job, ErrorList) {
	var files []string
	var errs ErrorList
	for _, p := range paths {
		found, err := Files(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			continue
		}
		files = append(files, found...)
	}
	var jobs []*Job
	for _, file := range files {
		data, err := readFile(file)
		if err != nil {
			errs = append(errs, &Error{File: file, Msg: err.Error()})
			continue
		}
		parsed, fileErrs := Parse(file, data)
		jobs = append(jobs, parsed...)
		errs = append(errs, fileErrs...)
	}
	errs.sort()
	return jobs, errs
}

// Files lists the job files Load reads at path: the file itself, or the
// *.yaml and *.yml files below a directory, skipping dot-directories and
// dot-files; a directory without any is an error.
func Files(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, errors.Unwrap(err) // *PathError repeats the path, which the Error already shows
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != path && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // .git and friends; dot-files (editor locks) are skipped too
		}
		if ext := filepath.Ext(p); !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory: %w", err)
	}
	if len(files) == 0 {
		return nil, ErrNoJobFiles
	}
	return files, nil
}

// ErrNoJobFiles is Files' error for a directory that holds no job files.
var ErrNoJobFiles = errors.New("no *.yaml or *.yml job files in this directory")

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

// Parse decodes and checks the jobs in one file's contents. A document is
// either one job or a mapping with a "jobs" list; a file may hold several
// documents separated by "---". Checks that need the whole set (names unique
// across files, parents, cycles) are CheckSet's.
func Parse(file string, data []byte) ([]*Job, ErrorList) {
	var jobs []*Job
	var errs ErrorList
	aliases := &aliasBudget{left: MaxAliasValues}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, yamlSyntaxError(file, data, err))
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		docJobs, docErrs := parseDocument(file, doc.Content[0], aliases)
		jobs = append(jobs, docJobs...)
		errs = append(errs, docErrs...)
	}
	errs.sort()
	return jobs, errs
}

func parseDocument(file string, root *yaml.Node, aliases *aliasBudget) ([]*Job, ErrorList) {
	d := &decoder{file: file}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "want a job (a mapping with name, schedule, command...) or a mapping with a jobs list, got %s", kindName(root))
		return nil, d.errs
	}
	var nodes []*yaml.Node
	var prefixes []string
	if list := mappingValue(root, "jobs"); list != nil {
		if len(root.Content) > 2 {
			for i := 0; i < len(root.Content); i += 2 {
				if root.Content[i].Value != "jobs" {
					d.errorf(root.Content[i], root.Content[i].Value, "unknown field next to jobs (a file holds one job, or only a jobs list)")
				}
			}
		}
		if list.Kind != yaml.SequenceNode {
			d.errorf(list, "jobs", "want a list of jobs, got %s", kindName(list))
			return nil, d.errs
		}
		for i, n := range list.Content {
			nodes = append(nodes, n)
			prefixes = append(prefixes, fmt.Sprintf("jobs[%d]", i))
		}
	} else {
		nodes, prefixes = []*yaml.Node{root}, []string{""}
	}
	var jobs []*Job
	for i, n := range nodes {
		job, errs := decodeJob(file, n, prefixes[i], aliases)
		d.errs = append(d.errs, errs...)
		if job != nil {
			jobs = append(jobs, job)
		}
	}
	return jobs, d.errs
}

// decodeJob decodes and checks one job; the job is returned even when it has
// problems so that set checks still see its name.
func decodeJob(file string, n *yaml.Node, prefix string, aliases *aliasBudget) (*Job, ErrorList) {
	d := &decoder{file: file, at: make(map[string]Position), aliases: aliases}
	if n.Kind == yaml.AliasNode {
		if !d.expand(n, prefix) {
			return nil, d.errs
		}
		d.aliasDepth++ // the job is charged whole; aliases inside it are not charged again
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, prefix, "want a job (a mapping with name, schedule, command...), got %s", kindName(n))
		return nil, d.errs
	}
	job := &Job{Source: d.pos(n)}
	d.decode(n, reflect.ValueOf(job).Elem(), "")
	job.applyDefaults()
	c := &checker{pos: job.Source, at: d.at, undecoded: fieldsOf(d.errs)}
	c.job(job)
	errs := append(d.errs, c.errs...)
	if len(errs) == 0 {
		// Each field within its limit can still add up (long lists, a huge
		// image name): bound the definition as it is stored in etcd.
		switch data, err := json.Marshal(job); {
		case err != nil: // the decoder takes no value JSON cannot hold, such as NaN
			errs = append(errs, job.Source.errorf(prefix, "job %s cannot be stored: %v", job.Name, err))
		case len(data) > MaxJobBytes:
			errs = append(errs, job.Source.errorf(prefix, "job %s is too large: %d bytes as stored, the limit is %d (shorten its long values and lists)", job.Name, len(data), MaxJobBytes))
		}
	}
	if job.Name == "" || !validName.MatchString(job.Name) {
		return nil, errs
	}
	job.positions, job.warnings = d.at, c.warns
	return job, errs
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// fieldsOf is the set of fields with a problem in errs.
func fieldsOf(errs ErrorList) map[string]bool {
	fields := make(map[string]bool, len(errs))
	for _, e := range errs {
		fields[e.Field] = true
	}
	return fields
}
