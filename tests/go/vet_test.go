package gotest

import (
	"os"
	"os/exec"
	"testing"
)

// The binding is tested on Linux only, but it builds, and vets, for the
// other systems purego supports: what is Linux-only (SO_DOMAIN, gettid,
// the direct sendto of replies, SIGURG chaining) sits behind build tags.
func TestBindingVetsElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet")
	}
	for _, target := range [][2]string{{"darwin", "amd64"}, {"darwin", "arm64"}} {
		cmd := exec.Command("go", "vet", "./bindings/go")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "GOOS="+target[0], "GOARCH="+target[1], "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s GOARCH=%s go vet ./bindings/go: %v\n%s", target[0], target[1], err, out)
		}
	}
}
