package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// listNodes merges executor registrations with their latest load report.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := etcdContext(r)
	defer cancel()
	resp, err := s.etcd.Get(ctx, s.keys.Nodes(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read nodes: %w", err)
	}
	list := api.NodeList{Nodes: []api.NodeInfo{}}
	registered := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var n store.Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			s.log.Warn("bad node registration in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
			continue
		}
		registered[n.ID] = true
		list.Nodes = append(list.Nodes, api.NodeInfo{Node: apiNode(n)})
	}
	now := s.now()
	s.mu.Lock()
	for i := range list.Nodes {
		if l, ok := s.loads[list.Nodes[i].ID]; ok {
			n := &list.Nodes[i]
			n.Running, n.Load1, n.MemFree, n.LastReport = l.Running, l.Load1, l.MemFree, l.At
		}
	}
	for id, l := range s.loads {
		if !registered[id] && now.Sub(l.At) > loadForgetAfter {
			delete(s.loads, id)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(list.Nodes, func(a, b api.NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, list)
	return nil
}
