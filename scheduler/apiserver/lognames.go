package apiserver

import (
	"fmt"

	"go.uber.org/zap"
)

// maxLoggedNames bounds the job names one log line carries: an apply of
// 50,000 jobs logs its counts and the first few names, not 50,000 names.
const maxLoggedNames = 10

// someNames is a log field with the first maxLoggedNames of names, the
// rest counted ("+N more").
func someNames(key string, names ...[]string) zap.Field {
	var out []string
	total := 0
	for _, list := range names {
		total += len(list)
		for _, n := range list {
			if len(out) < maxLoggedNames {
				out = append(out, n)
			}
		}
	}
	if more := total - len(out); more > 0 {
		out = append(out, fmt.Sprintf("+%d more", more))
	}
	return zap.Strings(key, out)
}
