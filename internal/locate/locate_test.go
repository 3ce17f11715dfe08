package locate

import (
	"os"
	"path/filepath"
	"testing"
)

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

const shipped = "models/flickr8k-merge-lstm"

// The shipped model, and another model shipped beside it (--models
// models/flickr8k-attention), are found wherever the install put them.
func TestModelSearchOrder(t *testing.T) {
	for _, m := range []string{shipped, "models/flickr8k-attention", "./models/flickr8k-attention/"} {
		root := t.TempDir()
		wd, exe, share := filepath.Join(root, "wd"), filepath.Join(root, "prefix", "bin"), filepath.Join(root, "usr-share")
		mkdirs(t, wd, exe)
		t.Chdir(wd)
		clean := filepath.Clean(m)
		steps := []struct{ name, dir, want string }{
			{"install prefix", filepath.Join(share, clean), filepath.Join(share, clean)},
			{"checkout holding bin/", filepath.Join(root, "prefix", clean), filepath.Join(exe, "..", clean)},
			{"beside the binary's prefix", filepath.Join(root, "prefix", "share", "captioner", clean), filepath.Join(exe, "..", "share", "captioner", clean)},
			{"working directory", filepath.Join(wd, clean), m},
		}
		// Each step adds a folder that must win over those added before it.
		for _, s := range steps {
			mkdirs(t, s.dir)
			got, err := model(m, shipped, exe, share)
			if err != nil || got != s.want {
				t.Errorf("%s, %s: got %q, %v; want %q", m, s.name, got, err, s.want)
			}
		}
	}
}

func TestModelNotFoundNamesTheFlag(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	_, err := model(shipped, shipped, "/opt/c/bin", "/usr/local/share/captioner")
	want := "model folder models/flickr8k-merge-lstm not found (looked in models/flickr8k-merge-lstm, /opt/c/share/captioner/models/flickr8k-merge-lstm, /opt/c/models/flickr8k-merge-lstm, /usr/local/share/captioner/models/flickr8k-merge-lstm): give the folder of a trained model, or install the shipped one with `make install`"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// A folder the user named is only looked for where it says.
	_, err = model("runs/mine", shipped, "/opt/c/bin", "/usr/local/share/captioner")
	want = "model folder runs/mine not found: give the folder of a trained model, or install the shipped one with `make install`"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// A file is not a folder, and the error says so rather than "not found".
	file := filepath.Join(root, "decoder.safetensors")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = model(file, shipped, "", "")
	want = "model " + file + " is a file: give the folder that holds the model's config.json, decoder.safetensors and vocab.json"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// Where the shipped models are, the error lists them (folders holding a
	// decoder's config.json and weights), as paths to give; a folder of
	// something else with a config.json is not one.
	share := filepath.Join(root, "share")
	for _, m := range []string{"flickr8k-attention", "flickr8k-merge-lstm", "other"} {
		mkdirs(t, filepath.Join(share, "models", m))
		files := []string{"config.json", "decoder.safetensors"}
		if m == "other" {
			files = files[:1]
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(share, "models", m, f), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err = model("nosuchmodel", shipped, "", share)
	want = "model folder nosuchmodel not found: give the folder of a trained model; the caption models beside the shipped one are " +
		filepath.Join(share, "models", "flickr8k-attention") + ", " + filepath.Join(share, "models", "flickr8k-merge-lstm")
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestSharedSearchOrder(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	pkg := filepath.Join(repo, "imgproc")
	exe := filepath.Join(root, "elsewhere", "checkout", "bin")
	mkdirs(t, pkg, exe)
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := shared(pkg, exe); ok {
		t.Fatal("found a shared folder where there is none")
	}
	steps := []struct{ name, dir, wd string }{
		{"beside the binary's checkout", filepath.Join(root, "elsewhere", "shared"), pkg},
		{"beside the module of the working directory", filepath.Join(root, "shared"), pkg},
		{"beside the working directory", filepath.Join(pkg, "..", "shared"), pkg},
		{"under the working directory", filepath.Join(pkg, "shared"), pkg},
	}
	for _, s := range steps {
		// A folder without models/mobilenet_v2 is not the assets folder.
		mkdirs(t, s.dir)
		if got, _ := shared(s.wd, exe); got == filepath.Clean(s.dir) {
			t.Errorf("%s: %s has no %s yet it was chosen", s.name, s.dir, encoderDir)
		}
		mkdirs(t, filepath.Join(s.dir, encoderDir))
		if got, ok := shared(s.wd, exe); !ok || got != filepath.Clean(s.dir) {
			t.Errorf("%s: got %q, %v; want %q", s.name, got, ok, filepath.Clean(s.dir))
		}
	}
}

// A file where an installed copy of the shipped model would be is not that
// copy: the search goes on to the next place. Only the folder the user named
// is an error when it is a file.
func TestModelSkipsAnInstalledFile(t *testing.T) {
	root := t.TempDir()
	wd, exe, share := filepath.Join(root, "wd"), filepath.Join(root, "prefix", "bin"), filepath.Join(root, "usr-share")
	file := filepath.Join(root, "prefix", "share", "captioner", shipped)
	mkdirs(t, wd, exe, filepath.Dir(file), filepath.Join(share, shipped))
	if err := os.WriteFile(file, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	if got, err := model(shipped, shipped, exe, share); err != nil || got != filepath.Join(share, shipped) {
		t.Errorf("got %q, %v; want %q, past the file %s", got, err, filepath.Join(share, shipped), file)
	}
}

// A folder that cannot be looked in is said, not passed over as missing:
// ./models a file makes models/flickr8k-merge-lstm "not a directory".
func TestModelReportsStatErrors(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	if err := os.WriteFile("models", []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := model(shipped, shipped, "", filepath.Join(root, "share"))
	if want := "model folder models/flickr8k-merge-lstm: stat models/flickr8k-merge-lstm: not a directory"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// A file named like the encoder's folder does not make the shared folder.
func TestSharedNeedsTheEncoderFolder(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "wd")
	mkdirs(t, wd, filepath.Join(wd, "shared", "models"))
	if err := os.WriteFile(filepath.Join(wd, "shared", encoderDir), []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := shared(wd, ""); ok {
		t.Errorf("chose %q, whose %s is a file", got, encoderDir)
	}
}

// Folders named config.json and decoder.safetensors do not make a model: the
// not-found message lists only folders holding those files.
func TestShippedModelsHoldFiles(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	share := filepath.Join(root, "share")
	mkdirs(t, filepath.Join(share, "models", "fake", "config.json"), filepath.Join(share, "models", "fake", "decoder.safetensors"))
	_, err := model("nosuchmodel", shipped, "", share)
	if want := "model folder nosuchmodel not found: give the folder of a trained model, or install the shipped one with `make install`"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
