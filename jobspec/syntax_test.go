package jobspec

import (
	"strings"
	"testing"
)

// YAML syntax errors point at the character at fault, and the two that
// crontab habits cause say to quote the value.
func TestParse_YAMLSyntaxErrorsPointAtTheColumn(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unquoted descriptor in a list", "jobs:\n  - name: a\n    schedule: @hourly\n    command: x\n",
			`f.yaml:3:15: schedule: YAML syntax: found character that cannot start any token; quote the value: a plain YAML value cannot start with @, write schedule: "@hourly"`},
		{"descriptor on the list item's line", "jobs:\n  - schedule: @weekly # weekly\n    name: a\n",
			`f.yaml:2:15: schedule: YAML syntax: found character that cannot start any token; quote the value: a plain YAML value cannot start with @, write schedule: "@weekly"`},
		{"colon in a command, CRLF", "name: a\r\nschedule: \"@daily\"\r\ncommand: echo a: b\r\n",
			`f.yaml:3:16: command: YAML syntax: mapping values are not allowed in this context; quote the value: ": " inside a plain YAML value starts a mapping, write command: "echo a: b"`},
		{"colon after non-ASCII text", "name: a\nschedule: \"@daily\"\ndescription: prüft: alles\n",
			`f.yaml:3:19: description: YAML syntax: mapping values are not allowed in this context; quote the value: ": " inside a plain YAML value starts a mapping, write description: "prüft: alles"`},
		{"colon in a command with quotes", "name: a\nschedule: \"@daily\"\ncommand: echo \"x\" y: z\n",
			`f.yaml:3:20: command: YAML syntax: mapping values are not allowed in this context; quote the value: ": " inside a plain YAML value starts a mapping, write command: 'echo "x" y: z'`},
		{"tab indentation", "name: a\n\tcommand: x\n",
			`f.yaml:2:1: YAML syntax: found a tab character that violates indentation; indent with spaces, not tabs`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("f.yaml", []byte(tt.text))
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Errorf("Parse errors:\n  %s\nwant\n  %s", strings.ReplaceAll(errs.Error(), "\n", "\n  "), tt.want)
			}
		})
	}
}
