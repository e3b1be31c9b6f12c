// Command helper is the only program in the image the Docker tests run
// (containertest.HelperImage), installed as /helper and as /bin/sh. It is
// static, so the image needs nothing else.
//
// Run as /helper, its arguments are one statement. Run as /bin/sh -c SCRIPT
// [NAME ARGS...], SCRIPT is statements separated by ";", words separated by
// blanks, with $VAR and ${VAR} replaced from the environment and $0..$9 from
// NAME and ARGS. That is all: it is no shell, just enough of one for tests.
//
// Statements:
//
//	echo WORDS...        print WORDS on stdout
//	err WORDS...         print WORDS on stderr
//	env NAME...          print NAME=value for each NAME
//	id                   print uid=N gid=N
//	pwd                  print the working directory
//	status FIELD...      print FIELD:value lines of /proc/self/status, e.g. CapEff
//	write FILE WORDS...  write WORDS and a newline to FILE
//	sleep DURATION       sleep, e.g. 500ms
//	ignore-term          ignore SIGTERM from now on
//	alloc MIB            allocate and touch MIB mebibytes, then sleep an hour
//	exit N               exit with status N
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if filepath.Base(os.Args[0]) != "sh" {
		run(os.Args[1:])
		return
	}
	if len(os.Args) < 3 || os.Args[1] != "-c" {
		fail("usage: sh -c SCRIPT [NAME ARGS...]")
	}
	positional := os.Args[3:]
	for _, stmt := range strings.Split(os.Args[2], ";") {
		var words []string
		for _, w := range strings.Fields(stmt) {
			words = append(words, os.Expand(w, func(name string) string {
				if n, err := strconv.Atoi(name); err == nil {
					if n < len(positional) {
						return positional[n]
					}
					return ""
				}
				return os.Getenv(name)
			}))
		}
		run(words)
	}
}

func run(words []string) {
	if len(words) == 0 {
		return
	}
	args := words[1:]
	switch words[0] {
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "err":
		fmt.Fprintln(os.Stderr, strings.Join(args, " "))
	case "env":
		for _, name := range args {
			fmt.Printf("%s=%s\n", name, os.Getenv(name))
		}
	case "id":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "pwd":
		dir, err := os.Getwd()
		if err != nil {
			fail(err.Error())
		}
		fmt.Println(dir)
	case "status":
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fail(err.Error())
		}
		for _, line := range strings.Split(string(data), "\n") {
			field, value, _ := strings.Cut(line, ":")
			if slices.Contains(args, field) {
				fmt.Printf("%s:%s\n", field, strings.TrimSpace(value))
			}
		}
	case "write":
		if len(args) < 1 {
			fail("usage: write FILE WORDS...")
		}
		if err := os.WriteFile(args[0], []byte(strings.Join(args[1:], " ")+"\n"), 0o644); err != nil {
			fail(err.Error())
		}
	case "sleep":
		d, err := time.ParseDuration(strings.Join(args, ""))
		if err != nil {
			fail(err.Error())
		}
		time.Sleep(d)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "alloc":
		mib, err := strconv.Atoi(strings.Join(args, ""))
		if err != nil {
			fail(err.Error())
		}
		var kept [][]byte
		for range mib {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept = append(kept, b)
		}
		fmt.Printf("allocated %d MiB\n", len(kept))
		time.Sleep(time.Hour)
	case "exit":
		code, err := strconv.Atoi(strings.Join(args, ""))
		if err != nil {
			fail(err.Error())
		}
		os.Exit(code)
	default:
		fail("unknown statement " + strconv.Quote(words[0]))
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "helper: "+msg)
	os.Exit(127)
}
