package apiserver

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

func TestHandlers_ServeExactlyTheRoutesOfPackageAPI(t *testing.T) {
	s := New(nil, nil, store.Keys{Prefix: store.DefaultPrefix}, "aion.", zap.NewNop(), time.Now)
	handlers := s.handlers()
	for _, rt := range api.Routes() {
		if handlers[rt] == nil {
			t.Errorf("route %s has no handler", rt)
		}
	}
	if len(handlers) != len(api.Routes()) {
		t.Errorf("%d handlers for %d routes: a handler serves a route package api does not list", len(handlers), len(api.Routes()))
	}
}
