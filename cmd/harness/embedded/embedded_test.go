package embedded

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// An address the caller names is used as given: if it is taken, starting
// fails and says which address (only addresses etcd picks itself are
// picked again).
func TestStartEtcd_AGivenAddressInUseIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartEtcd(context.Background(), EtcdConfig{Dir: t.TempDir(), ClientAddr: ln.Addr().String(), PeerAddr: peer})
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("start on a taken client address: %v; want address in use, naming %s", err, ln.Addr())
	}
}

// With addresses it picks itself, etcd starts and serves.
func TestStartEtcd_PicksFreeAddresses(t *testing.T) {
	e, err := StartEtcd(context.Background(), EtcdConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %q, want a loopback URL", e.Endpoint())
	}
}
