package assets

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Flickr8kDir is where the dataset lives inside the assets folder.
const Flickr8kDir = "data/flickr8k"

// Archive is a zip file whose members are extracted into the assets folder.
type Archive struct {
	URL string
	// Extract maps a member's path in the zip to its path in the assets folder
	// ("" skips it).
	Extract func(member string) string
	// Checks pins the SHA-256 of extracted files (relative to the assets folder),
	// since the archives themselves are published without checksums.
	Checks map[string]string
}

const flickr8kRelease = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/"

// Flickr8k is the public distribution of the dataset (Hodosh, Young & Hockenmaier
// 2013): photos and captions, with the official split lists.
var Flickr8k = []Archive{
	{
		URL: flickr8kRelease + "Flickr8k_Dataset.zip",
		Extract: func(m string) string {
			if strings.HasPrefix(m, "Flicker8k_Dataset/") && strings.HasSuffix(m, ".jpg") {
				return Flickr8kDir + "/images/" + path.Base(m)
			}
			return ""
		},
	},
	{
		URL: flickr8kRelease + "Flickr8k_text.zip",
		Extract: func(m string) string {
			switch b := path.Base(m); b {
			case "Flickr8k.token.txt", "Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt", "Flickr_8k.testImages.txt":
				return Flickr8kDir + "/" + b
			}
			return ""
		},
		Checks: map[string]string{
			Flickr8kDir + "/Flickr_8k.trainImages.txt": "e330ddd5156a4c2d2e2b67bc587e70e588f2d132bd8a10dc54dcb71e58115d8e",
			Flickr8kDir + "/Flickr_8k.devImages.txt":   "18ba829f47f6df1cb830bf7f0506e2ddf333818925299babbd1bbcaf50fdc504",
		},
	},
}

// FetchArchive downloads a into the folder and extracts the members it names,
// then verifies its pinned checksums.
func (s *Store) FetchArchive(a Archive) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".archive-*.zip")
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := s.get(a.URL, path.Base(a.URL), tmp); err != nil {
		return fmt.Errorf("assets: downloading %s: %w (check the network)", a.URL, err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	zr, err := zip.NewReader(tmp, st.Size())
	if err != nil {
		return fmt.Errorf("assets: %s is not a readable zip archive: %w", a.URL, err)
	}
	for _, m := range zr.File {
		rel := a.Extract(m.Name)
		if rel == "" || m.FileInfo().IsDir() {
			continue
		}
		if err := s.extract(m, rel); err != nil {
			return fmt.Errorf("assets: extracting %s from %s: %w", m.Name, a.URL, err)
		}
	}
	for rel, want := range a.Checks {
		sum, err := FileSHA256(filepath.Join(s.Dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("assets: %s did not contain %s: %w", a.URL, rel, err)
		}
		if sum != want {
			return fmt.Errorf("assets: %s from %s has SHA-256 %s, want %s: the archive is not the published dataset", rel, a.URL, sum, want)
		}
	}
	return nil
}

// extract writes member m to rel in the folder. An Extract that kept a
// member's own path would let "../" in an archive write outside the folder:
// rel must be local whatever the Extract.
func (s *Store) extract(m *zip.File, rel string) error {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("%s is not a path inside %s; the archive is not the published dataset", rel, s.Dir)
	}
	dst := filepath.Join(s.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	r, err := m.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".extract-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// archive/zip checks each member's CRC-32 as it is read to the end.
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return publish(tmp.Name(), dst)
}
