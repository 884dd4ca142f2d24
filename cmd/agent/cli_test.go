package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateEveryExampleConfig(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := runCLI(t, "validate", "--config", f)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "ok") {
				t.Errorf("stdout = %q, want an ok line", out)
			}
		})
	}
}

func TestValidateRejectsBrokenConfigs(t *testing.T) {
	demo, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		from, to  string // an edit of the demo config
		wantField string
	}{
		{"unknown key", "topic_prefix: emberwatch", "topic_prefix: emberwatch\ncolour: red", "colour"},
		{"misspelt key", "windows:", "windowz:", `did you mean "windows"`},
		{"wrong type", "hop: 1m", "hop: every minute", "windows[0].hop"},
		{"negative window", "size: 10m", "size: -10m", "windows[0].size"},
		{"unknown detector", "type: robust_zscore", "type: crystal_ball", "detectors[0].type"},
		{"unknown source", "type: simulator", "type: teapot", "sources[0].type"},
		{"bad rule", "smoke.mean > 40", "smoke.mean >> 40", "rules[0].expr"},
		{"missing device", "device: demo-01", "", "device: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(string(demo), tt.from, tt.to, 1)
			if src == string(demo) {
				t.Fatalf("edit %q not applied", tt.from)
			}
			path := filepath.Join(t.TempDir(), "broken.yaml")
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, "validate", "--config", path)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tt.wantField) {
				t.Errorf("stderr does not name %q:\n%s", tt.wantField, errOut)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"launch"}, `unknown command "launch"`},
		{"validate without config", []string{"validate"}, "usage: agent validate"},
		{"unknown flag", []string{"run", "--colour"}, "flag provided but not defined"},
		{"missing config file", []string{"validate", "--config", "/nonexistent/x.yaml"}, "no such file"},
		{"negative speed", []string{"run", "--speed", "-1"}, "sources[0].simulator.speed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.args, tt.want) })
	}
}

// wantUsageError runs the CLI with args and expects exit 2 with want in
// its stderr.
func wantUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not mention %q:\n%s", want, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"emberwatch", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH, "commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("version %q lacks %q", out, want)
		}
	}
}
