# Aion developer tasks. `just --list` shows them; each is a plain command you
# can also run by hand.

# Run Aion on this machine: embedded etcd and NATS, a scheduler and an executor.
dev:
    go run ./cmd/aion dev

# The test suite, exactly as the README and CI run it.
test:
    go test ./...

# Check the example job files.
validate:
    go run ./cmd/aion validate testdata/jobs

# Formatting and static checks.
lint:
    test -z "$(gofmt -l .)"
    go vet ./...

# Benchmarks of the hot paths (see BENCHMARKS.md for recorded figures).
bench:
    go test ./jobspec -run '^$' -bench . -benchmem
    go test ./scheduler -run '^$' -bench . -benchmem

# End to end: lateness, manual trigger latency (add --scale 1000000 for many jobs).
bench-e2e:
    go run ./cmd/aion bench --rates 1,100,200,500,1000 --manual 100

# The fault-injection scenarios, with their figures.
reliability:
    go test ./cmd/harness/reliability -count=1 -v

# Fuzz the parsers for a minute each.
fuzz:
    go test ./jobspec -run '^$' -fuzz FuzzParseISO8601 -fuzztime 60s
    go test ./jobspec -run '^$' -fuzz FuzzParse -fuzztime 60s
    go test ./scheduler/apiserver -run '^$' -fuzz FuzzAPI -fuzztime 60s -fuzzminimizetime 2s

build:
    go build -o bin/aion ./cmd/aion
    go build -o bin/aion-supervise ./cmd/aion-supervise
