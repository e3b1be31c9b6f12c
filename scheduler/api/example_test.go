package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/apiserver"
	"github.com/aionsched/aion/scheduler/store"
)

// startAPI starts a real etcd and NATS in this process and serves the API
// of package apiserver on them, as a scheduler does, with an admin token
// made straight in etcd (as `aion token create --etcd` makes the first
// one); stop ends it all.
func startAPI() (url, token string, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	dir, err := os.MkdirTemp("", "aion-api-example-")
	if err != nil {
		return "", "", nil, fmt.Errorf("temp dir: %w", err)
	}
	stops = append(stops, func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	etcd, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: dir, Log: zap.NewNop()})
	if err != nil {
		return "", "", nil, fmt.Errorf("start etcd: %w", err)
	}
	stops = append(stops, etcd.Close)
	ns, err := embedded.StartNATS("")
	if err != nil {
		return "", "", nil, fmt.Errorf("start NATS: %w", err)
	}
	stops = append(stops, ns.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", "", nil, fmt.Errorf("etcd client: %w", err)
	}
	stops = append(stops, func() { _ = cli.Close() })
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		return "", "", nil, fmt.Errorf("NATS client: %w", err)
	}
	stops = append(stops, nc.Close)
	srv := apiserver.New(cli, nc, store.Keys{Prefix: store.DefaultPrefix}, "aion.", zap.NewNop(), time.Now)
	if err := srv.Start(context.Background()); err != nil {
		return "", "", nil, fmt.Errorf("start the API: %w", err)
	}
	stops = append(stops, func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	stops = append(stops, hs.Close)
	secret, err := store.NewTokenSecret()
	if err != nil {
		return "", "", nil, err
	}
	admin := store.Token{Name: "example-admin", Role: string(api.RoleAdmin), CreatedAt: time.Now(), CreatedBy: "etcd"}
	if err := store.CreateToken(ctx, cli, store.Keys{Prefix: store.DefaultPrefix}, admin, secret); err != nil {
		return "", "", nil, fmt.Errorf("admin token: %w", err)
	}
	return hs.URL, secret, stop, nil
}

const exampleJobs = `jobs:
  - name: nightly
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    command: echo nightly
  - name: report
    parents: [nightly]
    command: echo report
`

// A client applies job files, lists and changes the stored jobs.
func Example() {
	url, token, stop, err := startAPI()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	c, err := api.NewClient(url, nil, api.WithToken(token))
	if err != nil {
		fmt.Println(err)
		return
	}

	res, err := c.Apply(ctx, []api.File{{Name: "jobs.yaml", Content: exampleJobs}}, api.ApplyOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", res.Created)

	list, err := c.ListJobs(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, j := range list.Jobs {
		fmt.Printf("%s runs %q in %s, next run known: %v\n", j.Name, j.Schedule, j.Timezone, !j.Next.IsZero())
	}

	d, err := c.Disable(ctx, "nightly")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s disabled: %v (changed: %v)\n", d.Job, d.Disabled, d.Changed)

	detail, err := c.GetJob(ctx, "nightly")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: disabled %v, %d fires so far\n", detail.Job.Name, detail.Job.Disabled, len(detail.Fires))
	// Output:
	// created: [nightly report]
	// nightly runs "30 2 * * *" in Europe/Berlin, next run known: true
	// report runs "after nightly" in UTC, next run known: false
	// nightly disabled: true (changed: true)
	// nightly: disabled true, 0 fires so far
}

// Errors of the API match sentinels with errors.Is; an *api.Error has the
// server's message and, for job files, every problem.
func ExampleError() {
	url, token, stop, err := startAPI()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	c, err := api.NewClient(url, nil, api.WithToken(token))
	if err != nil {
		fmt.Println(err)
		return
	}

	_, err = c.GetJob(ctx, "nope")
	fmt.Println(errors.Is(err, api.ErrNotFound), err)

	anonymous, err := api.NewClient(url, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = anonymous.ListJobs(ctx)
	fmt.Println(errors.Is(err, api.ErrUnauthorized), err)

	_, err = c.Apply(ctx, []api.File{{Name: "bad.yaml", Content: "name: Bad\nschedule: manual\ncommand: x\n"}}, api.ApplyOptions{})
	var ae *api.Error
	if errors.As(err, &ae) {
		fmt.Println(errors.Is(err, api.ErrBadRequest), ae.Status, ae.Message)
		fmt.Println(len(ae.Problems), "problem in", ae.Problems[0][:len("bad.yaml:1")])
	}

	_, err = c.DeleteJob(ctx, "nope", false)
	fmt.Println(errors.Is(err, api.ErrNotFound))

	gone, err := api.NewClient("http://127.0.0.1:1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = gone.ListJobs(ctx)
	fmt.Println(errors.Is(err, api.ErrUnreachable))
	// Output:
	// true get job nope: no job named "nope"
	// true list jobs: GET /v1/jobs needs a token: send Authorization: Bearer TOKEN
	// true 400 1 problem in the job files, nothing applied
	// 1 problem in bad.yaml:1
	// true
	// true
}
