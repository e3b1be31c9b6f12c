// Package containertest gives tests the real Docker engine of the machine
// and a tiny image to run on it, built by the test: no registry is needed.
// Tests skip, saying why, when no engine is reachable.
//
//	cli := containertest.Client(t)       // or t.Skip
//	img := containertest.HelperImage(t)  // aion-test-helper:<hash>
//
// The image holds one static program (package helper) as /helper and as
// /bin/sh; see its documentation for what it can do.
package containertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/aionsched/aion/executor/containerizer"
)

// ImageRepo is the repository of the helper image; its tag is a hash of the
// helper binary, so a changed helper makes a new image.
const ImageRepo = "aion-test-helper"

// Once per test binary: pinging and building take a while, and neither the
// engine nor the helper changes while tests run.
var (
	clientOnce sync.Once
	cli        *client.Client
	clientErr  error

	imageOnce sync.Once
	imageRef  string
	imageErr  error
)

// Client returns a client of the engine that client.FromEnv names, or skips
// the test when that engine does not answer a ping.
func Client(t testing.TB) *client.Client {
	t.Helper()
	clientOnce.Do(func() {
		c, err := client.New(client.FromEnv)
		if err != nil {
			clientErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
			_ = c.Close()
			clientErr = err
			return
		}
		cli = c
	})
	if clientErr != nil {
		t.Skipf("no Docker engine reachable, so the container tests cannot run: %v", clientErr)
	}
	return cli
}

// HelperImage builds the helper statically, imports it as an image (once
// per test binary; not at all when the engine has it already) and returns
// the image reference. It skips the test when no engine is reachable.
func HelperImage(t testing.TB) string {
	t.Helper()
	c := Client(t)
	imageOnce.Do(func() { imageRef, imageErr = buildImage(c) })
	if imageErr != nil {
		t.Fatalf("build the helper image: %v", imageErr)
	}
	return imageRef
}

func buildImage(c *client.Client) (string, error) {
	dir, err := os.MkdirTemp("", "aion-helper-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "helper")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/aionsched/aion/executor/containerizer/containertest/helper")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build helper: %w\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := ImageRepo + ":" + hex.EncodeToString(sum[:6])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	entries := []tar.Header{
		{Name: "helper", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg},
		{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir},
		{Name: "bin/sh", Linkname: "helper", Mode: 0o755, Typeflag: tar.TypeLink}, // docker applies a link's mode to its target
		{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir},
	}
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			return "", err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(data); err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	rc, err := c.ImageImport(ctx, client.ImageImportSource{Source: &rootfs, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{`CMD ["/helper", "echo", "the image's own command"]`},
	})
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	defer rc.Close()
	progress, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if strings.Contains(string(progress), `"error"`) {
		return "", fmt.Errorf("import: %s", progress)
	}
	return ref, nil
}

// Containers lists the containers, running or not, labelled as run by node.
func Containers(t testing.TB, node string) []container.Summary {
	t.Helper()
	list, err := Client(t).ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", containerizer.LabelNode+"="+node),
	})
	if err != nil {
		t.Fatalf("list containers of %s: %v", node, err)
	}
	return list.Items
}

// RemoveContainersAtEnd removes node's containers when the test ends, so a
// failed test leaves nothing running on the engine.
func RemoveContainersAtEnd(t testing.TB, node string) {
	t.Helper()
	c := Client(t)
	t.Cleanup(func() {
		for _, ct := range Containers(t, node) {
			_, _ = c.ContainerRemove(context.Background(), ct.ID, client.ContainerRemoveOptions{Force: true})
		}
	})
}
