// Package locate finds captioner's files wherever the binary or a test is run
// from: the shipped caption model and the shared assets folder.
package locate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SharePrefix is where `make install` puts the model with the default PREFIX;
// a binary copied anywhere finds it there.
const SharePrefix = "/usr/local/share/captioner"

// encoderDir is what makes a folder the shared assets folder.
const encoderDir = "models/mobilenet_v2"

// Shared returns the first folder named shared that holds models/mobilenet_v2,
// looked for in this order:
//
//  1. ./shared, under the working directory;
//  2. ../shared, beside the working directory (a checkout run from its root);
//  3. beside the repository that holds the working directory (found by its
//     go.mod): where `go test` runs, in a package folder;
//  4. beside the repository whose bin/ holds the running binary.
func Shared() (string, bool) {
	wd, _ := os.Getwd()
	exe, _ := executableDir()
	return shared(wd, exe)
}

// shared is Shared from working directory wd and the binary's folder exe
// ("" when unknown).
func shared(wd, exe string) (string, bool) {
	var cands []string
	if wd != "" {
		cands = append(cands, filepath.Join(wd, "shared"), filepath.Join(wd, "..", "shared"))
		if root, ok := moduleRoot(wd); ok {
			cands = append(cands, filepath.Join(root, "..", "shared"))
		}
	}
	if exe != "" {
		cands = append(cands, filepath.Join(exe, "..", "..", "shared"))
	}
	for _, c := range cands {
		if isDir(filepath.Join(c, encoderDir)) {
			return filepath.Clean(c), true
		}
	}
	return "", false
}

// Model returns the caption model folder dir. A relative dir in the shipped
// model's folder (shipped is its path in the repository, models/NAME: the
// shipped models are installed together) is also looked for, in this order: under the working
// directory (a checkout), in the install prefix beside the binary
// (<exe>/../share/captioner, as `make install PREFIX=...` lays it out), beside
// the bin/ folder of a checkout holding the binary, and in SharePrefix.
//
// The model is not embedded in the binary: it is 15 MB, serve reloads it from
// its folder, and a retrained model must replace it without a rebuild.
func Model(dir, shipped string) (string, error) {
	exe, _ := executableDir()
	return model(dir, shipped, exe, SharePrefix)
}

// model is Model for the binary's folder exe ("" when unknown) and the install
// prefix share.
func model(dir, shipped, exe, share string) (string, error) {
	cands := []string{dir}
	if !filepath.IsAbs(dir) && filepath.Dir(filepath.Clean(dir)) == filepath.Dir(shipped) {
		cands = append(cands, installed(dir, exe, share)...)
	}
	for _, c := range cands {
		st, err := os.Stat(c)
		switch {
		case err == nil && st.IsDir():
			return c, nil
		case err == nil && c == dir:
			return "", fmt.Errorf("model %s is a file: give the folder that holds the model's config.json, decoder.safetensors and vocab.json", dir)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("model folder %s: %w", c, err)
		}
	}
	looked := ""
	if len(cands) > 1 {
		looked = " (looked in " + strings.Join(cands, ", ") + ")"
	}
	if found := shippedModels(shipped, exe, share); len(found) > 0 {
		return "", fmt.Errorf("model folder %s not found%s: give the folder of a trained model; the caption models beside the shipped one are %s", dir, looked, strings.Join(found, ", "))
	}
	return "", fmt.Errorf("model folder %s not found%s: give the folder of a trained model, or install the shipped one with `make install`", dir, looked)
}

// installed are the places beside the binary and in the install prefix share
// where the relative path dir, the shipped model's or its folder's, is looked
// for after the working directory.
func installed(dir, exe, share string) []string {
	var out []string
	if exe != "" {
		out = append(out, filepath.Join(exe, "..", "share", "captioner", dir), filepath.Join(exe, "..", dir))
	}
	return append(out, filepath.Join(share, dir))
}

// shippedModels lists the caption models (folders holding a decoder's
// config.json and weights, decoder.ConfigFile and WeightsFile) in the first
// of the places the shipped model's folder is looked for that has any, each
// as a path to give: a user who mistyped a model folder learns which there
// are.
func shippedModels(shipped, exe, share string) []string {
	parent := filepath.Dir(shipped)
	for _, d := range append([]string{parent}, installed(parent, exe, share)...) {
		entries, _ := os.ReadDir(d)
		var out []string
		for _, e := range entries {
			if isFile(filepath.Join(d, e.Name(), "config.json")) && isFile(filepath.Join(d, e.Name(), "decoder.safetensors")) {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// moduleRoot returns the nearest folder at or above dir holding a go.mod.
func moduleRoot(dir string) (string, bool) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// executableDir is the folder of the running binary, links resolved (a
// symlink in /usr/local/bin to a checkout's bin/ finds that checkout).
func executableDir() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Dir(exe), nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
