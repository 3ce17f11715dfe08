package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

func TestMain(m *testing.M) { testassets.Main(m) }

// TestExitStatus runs captioner as a process: a command that fails exits
// with status 1 and its error on stderr, and the --config flag defaults to
// CAPTIONER_CONFIG.
func TestExitStatus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("decode:\n  no_repeat: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args, env, stdout, stderr string
		status                    int
	}{
		{"caption", "", "", "captioner: caption needs at least 1 image file, got 0: captioner caption [--beam K] [--json] [--attention DIR] IMAGE... [flags]\n", 1},
		{"config", "CAPTIONER_CONFIG=" + file, "  no_repeat: 7\n", "", 0},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
		cmd.Env = append(os.Environ(), "CAPTIONER_SERVE_HELPER_ARGS="+tc.args)
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		status := 0
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != tc.status || stderr.String() != tc.stderr || !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("%s captioner %s: status %d, stderr %q, stdout %q; want %d, %q and %q in stdout", tc.env, tc.args, status, stderr.String(), stdout.String(), tc.status, tc.stderr, tc.stdout)
		}
	}
}
