package emberwatch_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/emberwatch/emberwatch"

// stages may import the root package and third-party code, never each
// other, configs, or cmd/agent. cmd/agent alone sees the whole graph.
var stages = []string{"sensors", "windowing", "detect", "buffer", "uplink"}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestStagesDoNotImportEachOther(t *testing.T) {
	for _, s := range stages {
		pkg := module + "/" + s
		for _, d := range deps(t, pkg) {
			if d == pkg || d == module || !strings.HasPrefix(d, module+"/") {
				continue
			}
			t.Errorf("%s imports %s: stages depend on the root types only", s, d)
		}
	}
}

func TestRootImportsOnlyTheStandardLibrary(t *testing.T) {
	for _, d := range deps(t, module) {
		if d != module && strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
			t.Errorf("the root package imports %s; it must import the standard library only", d)
		}
	}
}
