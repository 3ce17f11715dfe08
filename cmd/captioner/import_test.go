package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

// TestImportWritesAnotherFile: import writes the weights as safetensors to
// --out, and refuses an --out that is the TFLite file it reads, which it had
// overwritten, or any file that is not safetensors; it may replace its own.
func TestImportWritesAnotherFile(t *testing.T) {
	assets := testassets.Dir(t, "the test imports the MobileNetV2 TFLite file")
	tflite, err := os.ReadFile(filepath.Join(assets, "models", "mobilenet_v2", "mobilenet_v2_1.0_224_quant.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	q := filepath.Join(dir, "q.tflite")
	if err := os.WriteFile(q, tflite, 0o644); err != nil {
		t.Fatal(err)
	}
	// The same file by another name: a link to it.
	link := filepath.Join(dir, "link.tflite")
	if err := os.Symlink(q, link); err != nil {
		t.Fatal(err)
	}
	resetFlags(t, "import", "out")
	_, err = run(t, "import", "--assets", assets, q, "--out", link)
	if want := "--out " + link + " exists and is not encoder weights that import wrote: it would be overwritten; name another file"; err == nil || err.Error() != want {
		t.Errorf("import --out its input: %v, want %q", err, want)
	}
	if after, _ := os.ReadFile(q); !bytes.Equal(after, tflite) {
		t.Error("the refused import changed the TFLite file")
	}
	// Nor a safetensors file that import did not write: a model's decoder.
	decoderFile := filepath.Join(dir, "decoder.safetensors")
	weights, err := os.ReadFile(filepath.Join(shippedModel, "decoder.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(decoderFile, weights, 0o644)
	if _, err := run(t, "import", "--assets", assets, q, "--out", decoderFile); err == nil || !strings.Contains(err.Error(), "exists and is not encoder weights that import wrote") {
		t.Errorf("import --out a model's decoder: %v", err)
	}
	if after, _ := os.ReadFile(decoderFile); !bytes.Equal(after, weights) {
		t.Error("the refused import changed the decoder's weights")
	}
	for range 2 { // the second replaces the first
		out, err := run(t, "import", "--assets", assets, q, "--out", filepath.Join(dir, "w.safetensors"))
		if err != nil || !strings.Contains(out, "wrote "+filepath.Join(dir, "w.safetensors")) {
			t.Errorf("import --out w.safetensors: %v\n%s", err, out)
		}
	}
}
