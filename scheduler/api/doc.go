// Package api is Aion's HTTP API as its users see it: the wire types of
// every request and answer, the routes (defined once, here; the server in
// package apiserver serves this table), the errors an answer can be, and a
// typed Client with one method per route. It depends on net/http and
// jobspec only, so a Go program or the CLI that talks to a cluster pulls in
// neither etcd nor NATS.
//
//	c, err := api.NewClient("http://127.0.0.1:8080", nil)
//	if err != nil { ... }
//	jobs, err := c.ListJobs(ctx)
//	if errors.Is(err, api.ErrUnreachable) { ... } // no scheduler answers
//
// Endpoints (errors are {"error": "...", "problems": ["..."]}):
//
//	POST   /v1/apply?prune=true&dry_run=true     apply job files (ApplyRequest → ApplyResponse)
//	GET    /v1/jobs                              JobList
//	GET    /v1/jobs/{name}                       JobDetail
//	DELETE /v1/jobs/{name}?cascade=true          DeleteResponse; 409 while other jobs list it in parents, unless cascade
//	POST   /v1/jobs/{name}/run                   RunRequest → 202 RunResponse
//	POST   /v1/jobs/{name}/enable                EnableResponse
//	POST   /v1/jobs/{name}/disable               EnableResponse
//	GET    /v1/jobs/{name}/fires?limit=N         FireList, newest first
//	POST   /v1/jobs/{name}/backfill              BackfillRequest → 202 BackfillResponse (200 for a dry run)
//	POST   /v1/jobs/{name}/pause                 PauseRequest{note} → 202 PauseResponse
//	POST   /v1/jobs/{name}/resume                PauseRequest{catchup} → 202 PauseResponse
//	GET    /v1/fires/{job}/{suffix}              Fire (fire ID job@suffix)
//	GET    /v1/fires/{job}/{suffix}/log?offset=N LogChunk
//	POST   /v1/fires/{job}/{suffix}/kill         KillRequest → 202 KillResponse; 409 when the fire has ended
//	GET    /v1/nodes                             NodeList
//	GET    /healthz                              "ok"
package api
