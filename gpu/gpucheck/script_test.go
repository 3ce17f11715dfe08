package gpucheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The model lookup of scripts/gpu-check.sh (--list-models), which decides what
// the GPU machine checks: a full bundle's own models/, else, in a lean bundle
// (make gpu-bundle GPU_MODELS=), the models/ of the checkout it runs from.

// bundle lays out root/gpu-bundle/gpu-check.sh, the script under test.
func bundle(t *testing.T, root string) string {
	t.Helper()
	script, err := os.ReadFile("../../scripts/gpu-check.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "gpu-bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gpu-check.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// modelFolder writes a model folder with config (config.json) and an empty
// decoder.safetensors: the lookup reads the architecture only.
func modelFolder(t *testing.T, dir, config string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"config.json": config, "decoder.safetensors": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listModels runs gpu-check.sh --list-models from dir (as the device machine
// does, from the checkout's root).
func listModels(t *testing.T, dir string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("bash", "gpu-bundle/gpu-check.sh", "--list-models")
	cmd.Dir = dir
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

const (
	mergeConfig     = `{"feat_dim": 1280, "embed": 256, "hidden": 512, "mid": 256, "vocab": 2541}` // before the arch field: merge
	attentionConfig = `{"arch": "attention", "feat_dim": 1280, "embed": 256, "hidden": 512, "regions": 49, "att": 512, "vocab": 2541}`
)

func TestLeanBundleUsesTheCheckoutsModels(t *testing.T) {
	root := t.TempDir()
	bundle(t, root)
	modelFolder(t, filepath.Join(root, "models", "a-merge"), mergeConfig)
	modelFolder(t, filepath.Join(root, "models", "b-attention"), attentionConfig)
	if err := os.MkdirAll(filepath.Join(root, "models", "notes"), 0o755); err != nil { // no model in it
		t.Fatal(err)
	}
	out, stderr, err := listModels(t, root)
	if err != nil {
		t.Fatalf("--list-models: %v: %s", err, stderr)
	}
	// The attention model is the default, so it comes first.
	want := "b-attention\tattention\t" + filepath.Join(root, "models", "b-attention") + "\n" +
		"a-merge\tmerge\t" + filepath.Join(root, "models", "a-merge") + "\n"
	if out != want {
		t.Errorf("--list-models printed\n%q\nwant\n%q", out, want)
	}
}

func TestFullBundleUsesItsOwnModels(t *testing.T) {
	root := t.TempDir()
	dir := bundle(t, root)
	modelFolder(t, filepath.Join(dir, "models", "shipped"), mergeConfig)
	modelFolder(t, filepath.Join(root, "models", "checkout"), attentionConfig)
	out, stderr, err := listModels(t, root)
	if err != nil {
		t.Fatalf("--list-models: %v: %s", err, stderr)
	}
	if want := "shipped\tmerge\t" + filepath.Join(dir, "models", "shipped") + "\n"; out != want {
		t.Errorf("--list-models printed %q, want %q", out, want)
	}
}

func TestNoModelNamesWhereItLooked(t *testing.T) {
	root := t.TempDir()
	dir := bundle(t, root)
	modelFolder(t, filepath.Join(root, "models", "half"), mergeConfig)
	if err := os.Remove(filepath.Join(root, "models", "half", "decoder.safetensors")); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := listModels(t, root)
	if err == nil {
		t.Fatalf("--list-models succeeded without a model: %q", out)
	}
	want := "gpu-check: no caption model found: looked for folders holding config.json and decoder.safetensors in " +
		filepath.Join(dir, "models") + " and " + filepath.Join(root, "models") +
		"; run from the root of a checkout that has models/ (a bundle built with GPU_MODELS= has none of its own) or pass --models DIR\n"
	if stderr != want {
		t.Errorf("error\n%q\nwant\n%q", stderr, want)
	}
}
