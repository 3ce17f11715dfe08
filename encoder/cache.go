package encoder

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/captioner/captioner/assets"
)

// CacheDir is where imported weights are kept: the models folder under
// assets.CacheDir.
func CacheDir() (string, error) {
	d, err := assets.CacheDir()
	if err != nil {
		return "", fmt.Errorf("encoder: %w", err)
	}
	return filepath.Join(d, "models"), nil
}

// CachePath is the imported-weights file for a TFLite file with SHA-256 sha:
// the key is the file's content (and the import format), never its name.
func CachePath(cacheDir, sha string) string {
	return filepath.Join(cacheDir, fmt.Sprintf("mobilenet_v2-%s-%s.safetensors", sha[:16], formatTag))
}

// formatTag versions CachePath with Format: a new import layout re-imports.
// f2: the quantization of the TFLite file (Weights.Quant); f3: a checksum of
// the contents, so that a cache damaged on disk is made again.
const formatTag = "f3"

// Cached returns the weights of the TFLite file at path, importing it into
// cacheDir on first use and loading the imported file afterwards. When
// cacheDir cannot be written, it returns the imported weights with a
// *NotCachedError.
func Cached(path, cacheDir string) (w *Weights, imported bool, err error) {
	sha, err := assets.FileSHA256(path)
	if err != nil {
		return nil, false, err
	}
	out := CachePath(cacheDir, sha)
	w, err = LoadWeights(out)
	if err == nil && w.Config.SourceSHA == sha {
		return w, false, nil
	}
	// Absent, damaged or made from other bytes: (re-)import rather than trust it.
	if w, err = ImportFile(path); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return w, true, &NotCachedError{cacheDir, err}
	}
	if err := w.Save(out); err != nil {
		// The file system's refusal; any other error (the weights' own) is no
		// cache's.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return w, true, &NotCachedError{cacheDir, err}
		}
		return nil, false, err
	}
	return w, true, nil
}

// NotCachedError says that imported weights, good in themselves, could not be
// written into the cache folder Dir.
type NotCachedError struct {
	Dir string
	Err error
}

func (e *NotCachedError) Error() string {
	return fmt.Sprintf("encoder: the imported weights cannot be kept in the cache folder %s (%v); set CAPTIONER_CACHE (or XDG_CACHE_HOME) to a folder this user can write", e.Dir, e.Err)
}

func (e *NotCachedError) Unwrap() error { return e.Err }

// LoadDefault returns the weights of the default encoder: the uint8 MobileNetV2
// TFLite file of the assets folder (assetsDir, else CAPTIONER_ASSETS, else the
// download cache), imported on first use into CacheDir.
func LoadDefault(assetsDir string) (*Weights, error) {
	store, err := assets.Open(assetsDir)
	if err != nil {
		return nil, err
	}
	path, err := store.Path(assets.EncoderTFLite)
	if err != nil {
		return nil, err
	}
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	w, _, err := Cached(path, dir)
	if nc := (*NotCachedError)(nil); errors.As(err, &nc) {
		// A read-only home or container: the weights work, imported anew at
		// every start (well under a second).
		slog.Warn(nc.Error() + "; imported in memory for this run")
		return w, nil
	}
	return w, err
}
