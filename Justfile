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

# Fuzz the parsers for a minute each.
fuzz:
    go test ./jobspec -run '^$' -fuzz FuzzParseISO8601 -fuzztime 60s
    go test ./jobspec -run '^$' -fuzz FuzzParse -fuzztime 60s

build:
    go build -o bin/aion ./cmd/aion
