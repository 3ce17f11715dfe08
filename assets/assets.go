// Package assets finds captioner's external files — the pretrained MobileNetV2
// weights and the Flickr8k data — in a folder laid out like this:
//
//	models/mobilenet_v2/mobilenet_v2_1.0_224_quant.tflite
//	models/mobilenet_v2/tf2_mobilenet_v2_1.0_224_ptq.tflite
//	models/mobilenet_v2/imagenet_labels.txt
//	data/flickr8k/Flickr8k.token.txt, Flickr_8k.trainImages.txt, Flickr_8k.devImages.txt, images/
//
// The folder is the configuration key `assets` or the environment variable
// CAPTIONER_ASSETS. When neither is set, the files live in a cache folder and are
// downloaded from their public sources on first use, each checked against a
// pinned SHA-256 before it is used.
package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is one downloadable asset.
type File struct {
	Path   string // relative to the assets folder
	URL    string // public source
	SHA256 string // hex digest of the file at URL
}

// coralCommit pins google-coral/test_data, where the TFLite MobileNetV2 files are published.
const coralCommit = "c21de4450f88a20ac5968628d375787745932a5a"

func coral(name string) string {
	return "https://raw.githubusercontent.com/google-coral/test_data/" + coralCommit + "/" + name
}

// Paths of the encoder's files inside the assets folder.
const (
	EncoderTFLite    = "models/mobilenet_v2/mobilenet_v2_1.0_224_quant.tflite"
	EncoderTFLiteTF2 = "models/mobilenet_v2/tf2_mobilenet_v2_1.0_224_ptq.tflite"
	ImageNetLabels   = "models/mobilenet_v2/imagenet_labels.txt"
)

// Known lists every file that can be downloaded on its own.
var Known = []File{
	{EncoderTFLite, coral("mobilenet_v2_1.0_224_quant.tflite"), "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"},
	{EncoderTFLiteTF2, coral("tf2_mobilenet_v2_1.0_224_ptq.tflite"), "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"},
	{ImageNetLabels, coral("imagenet_labels.txt"), "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1"},
}

// Store is an assets folder.
type Store struct {
	// Dir is the folder's absolute path.
	Dir string
	// Managed is true for the cache folder, which may download missing files; a
	// folder the user named is only read.
	Managed bool
	// Fetch downloads a URL; the default uses net/http.
	Fetch func(url string) (io.ReadCloser, error)
	// Log receives each download's progress bar; nil discards. Open sets it to
	// stderr for the cache folder.
	Log io.Writer
}

// Open returns the assets folder: configured if not empty, else CAPTIONER_ASSETS,
// else the assets folder under CacheDir.
func Open(configured string) (*Store, error) {
	dir := configured
	if dir == "" {
		dir = os.Getenv("CAPTIONER_ASSETS")
	}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		const fix = "pass --assets (or set CAPTIONER_ASSETS) with a folder laid out like shared/, or set neither and run `captioner setup` to download into the cache"
		st, err := os.Stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("assets: folder %s does not exist; %s", abs, fix)
		case err != nil:
			return nil, fmt.Errorf("assets: %w; %s", err, fix)
		case !st.IsDir():
			return nil, fmt.Errorf("assets: %s is a file, not a folder; %s", abs, fix)
		}
		return &Store{Dir: abs, Fetch: httpGet}, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	// A download on first use (caption, classify, serve) shows its progress too.
	return &Store{Dir: filepath.Join(cache, "assets"), Managed: true, Fetch: httpGet, Log: os.Stderr}, nil
}

// CacheDir is captioner's cache root, holding downloaded assets, imported encoder
// weights and extracted features: CAPTIONER_CACHE when set (containers set it to a
// folder baked into the image), else $XDG_CACHE_HOME/captioner (~/.cache/captioner).
func CacheDir() (string, error) {
	if d := os.Getenv("CAPTIONER_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (%v); set CAPTIONER_CACHE to a writable folder", err)
	}
	return filepath.Join(d, "captioner"), nil
}

// Path returns the absolute path of rel (a path relative to the folder), downloading
// it first when the folder is the cache and rel is a Known file.
func (s *Store) Path(rel string) (string, error) {
	p := filepath.Join(s.Dir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("assets: %w", err)
	}
	f, known := lookup(rel)
	switch {
	case !s.Managed && known:
		// setup only verifies a folder of the user's own: its advice is for the cache.
		return "", fmt.Errorf("assets: %s not found in %s (its public source: %s); %s", rel, s.Dir, f.URL, ownFolderAdvice)
	case !s.Managed:
		return "", fmt.Errorf("assets: %s not found in %s; %s", rel, s.Dir, ownFolderAdvice)
	case !known:
		return "", fmt.Errorf("assets: %s not found in the cache %s, and it is no public file setup downloads: pass --assets (or set CAPTIONER_ASSETS) with a folder that has it", rel, s.Dir)
	}
	if err := s.download(f); err != nil {
		return "", err
	}
	return p, nil
}

func lookup(rel string) (File, bool) {
	for _, f := range Known {
		if f.Path == rel {
			return f, true
		}
	}
	return File{}, false
}

// download fetches f into the folder through a temporary file, renamed into place
// only once its checksum matches, so an interrupted or corrupted download never
// leaves a file that looks valid.
func (s *Store) download(f File) error {
	dst := filepath.Join(s.Dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	if err := s.get(f.URL, f.Path, io.MultiWriter(tmp, h)); err != nil {
		tmp.Close()
		return fmt.Errorf("assets: downloading %s: %w (check the network, pass --assets with a folder that has the file, or download it by hand into %s)", f.URL, err, dst)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("assets: %s has SHA-256 %s, want %s: the download is corrupt or the source changed; nothing was saved", f.URL, got, f.SHA256)
	}
	return publish(tmp.Name(), dst)
}

// publish renames the finished temporary file tmp to dst, readable by all:
// os.CreateTemp makes it 0600, so a cache filled by root (the container
// images' setup stage) was unreadable to the user the server runs as.
func publish(tmp, dst string) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	return os.Rename(tmp, dst)
}

// Verify checks every Known file present in the folder against its checksum and
// returns one error per mismatch; absent files are reported when requireAll.
func (s *Store) Verify(requireAll bool) error {
	var errs []error
	for _, f := range Known {
		p := filepath.Join(s.Dir, filepath.FromSlash(f.Path))
		sum, err := FileSHA256(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if requireAll {
				errs = append(errs, fmt.Errorf("assets: %s is missing from %s (the public file: %s)", f.Path, s.Dir, f.URL))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("assets: %w", err))
		case !s.Managed && sum != f.SHA256:
			errs = append(errs, fmt.Errorf("assets: %s has SHA-256 %s, want %s (a different or damaged file: replace it with %s)", p, sum, f.SHA256, f.URL))
		case sum != f.SHA256:
			errs = append(errs, fmt.Errorf("assets: %s has SHA-256 %s, want %s (a different or damaged file: delete it and run `captioner setup`)", p, sum, f.SHA256))
		}
	}
	if len(errs) > 0 && !s.Managed {
		// setup verifies a folder of the user's own and stops there.
		errs = append(errs, errors.New("assets: "+ownFolderAdvice))
	}
	return errors.Join(errs...)
}

// ownFolderAdvice is what to do about a file missing from an assets folder of
// the user's own, which setup only verifies: the cache is the way to a
// download only where no shared/ folder is found either (locate.Shared).
const ownFolderAdvice = "the assets folder is one of your own (--assets, CAPTIONER_ASSETS, or a shared/ found beside the working directory or the repository), which captioner reads but never downloads into: put the files there yourself, or point --assets at a folder laid out like shared/ that has them; where no shared/ folder is found, setting neither makes `captioner setup` download into the cache"

// FileSHA256 is the hex SHA-256 of a file's contents: how assets are pinned, imported
// weights are keyed and model versions are named.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
