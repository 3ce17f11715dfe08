package assets

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/captioner/captioner/internal/testassets"
)

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// server serves files by URL path over a real loopback listener.
func server(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func withKnown(t *testing.T, files []File) {
	old := Known
	Known = files
	t.Cleanup(func() { Known = old })
}

func TestPathDownloadsIntoCacheAndVerifies(t *testing.T) {
	good := []byte("weights")
	srv := server(t, map[string][]byte{"/w.tflite": good, "/bad": []byte("tampered")})
	withKnown(t, []File{
		{"models/w.tflite", srv.URL + "/w.tflite", sum(good)},
		{"models/bad.tflite", srv.URL + "/bad", sum(good)},
		{"models/gone.tflite", srv.URL + "/missing", sum(good)},
	})
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: httpGet}

	p, err := s.Path("models/w.tflite")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, good) {
		t.Fatalf("downloaded %q", b)
	}
	// Readable by all: the images download as root and serve as another user.
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("downloaded file mode %v (%v), want -rw-r--r--", st.Mode().Perm(), err)
	}
	_, err = s.Path("models/bad.tflite")
	if err == nil || !strings.Contains(err.Error(), "want "+sum(good)) {
		t.Fatalf("checksum mismatch not reported: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "models/bad.tflite")); !os.IsNotExist(err) {
		t.Fatalf("a file with the wrong checksum was kept: %v", err)
	}
	if _, err := s.Path("models/gone.tflite"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("HTTP error not reported: %v", err)
	}
	if err := s.Verify(false); err != nil {
		t.Fatalf("verify after download: %v", err)
	}
	if err := s.Verify(true); err == nil || !strings.Contains(err.Error(), "models/gone.tflite is missing") {
		t.Fatalf("verify(requireAll) = %v", err)
	}
}

func TestUserFolderIsNeverDownloadedInto(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Managed {
		t.Fatal("a configured folder must not be managed")
	}
	s.Fetch = func(string) (io.ReadCloser, error) { t.Fatal("fetched into a user folder"); return nil, nil }
	_, err = s.Path(EncoderTFLite)
	want := "assets: " + EncoderTFLite + " not found in " + dir + " (its public source: " + Known[0].URL + "); " + ownFolderAdvice
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	_, err = s.Path("models/other.tflite") // no public file
	if want := "assets: models/other.tflite not found in " + dir + "; " + ownFolderAdvice; err == nil || err.Error() != want {
		t.Fatalf("a file no URL is known for: got %v, want %q", err, want)
	}
	_, err = Open(filepath.Join(dir, "nope"))
	want = "assets: folder " + filepath.Join(dir, "nope") + " does not exist; pass --assets (or set CAPTIONER_ASSETS) with a folder laid out like shared/, or set neither and run `captioner setup` to download into the cache"
	if err == nil || err.Error() != want {
		t.Fatalf("missing folder: got %v, want %q", err, want)
	}
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(file)
	want = "assets: " + file + " is a file, not a folder; pass --assets (or set CAPTIONER_ASSETS) with a folder laid out like shared/, or set neither and run `captioner setup` to download into the cache"
	if err == nil || err.Error() != want {
		t.Fatalf("a file: got %v, want %q", err, want)
	}
}

// zipped is a zip archive of members (name -> contents), stored uncompressed
// so that a test can damage a member's bytes in place.
func zipped(t *testing.T, members map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFetchArchiveExtractsAndChecks(t *testing.T) {
	srv := server(t, map[string][]byte{"/a.zip": zipped(t, map[string]string{
		"Flicker8k_Dataset/1.jpg":      "jpeg",
		"__MACOSX/Flicker8k_Dataset/x": "junk",
		"Flickr_8k.trainImages.txt":    "1.jpg\n",
	})})
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: httpGet}
	a := Archive{URL: srv.URL + "/a.zip", Extract: Flickr8k[0].Extract}
	if err := s.FetchArchive(a); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, Flickr8kDir, "images/1.jpg")); err != nil || string(b) != "jpeg" {
		t.Fatalf("image not extracted: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(s.Dir, Flickr8kDir, "images/1.jpg")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("extracted file mode %v (%v), want -rw-r--r--", st.Mode().Perm(), err)
	}
	a = Archive{URL: srv.URL + "/a.zip", Extract: Flickr8k[1].Extract,
		Checks: map[string]string{Flickr8kDir + "/Flickr_8k.trainImages.txt": sum([]byte("other\n"))}}
	if err := s.FetchArchive(a); err == nil || !strings.Contains(err.Error(), "is not the published dataset") {
		t.Fatalf("checksum of an extracted file not enforced: %v", err)
	}
	// A pinned file the archive lacks fails it too.
	a.Checks = map[string]string{Flickr8kDir + "/Flickr_8k.devImages.txt": sum([]byte("1.jpg\n"))}
	want := "assets: " + a.URL + " did not contain " + Flickr8kDir + "/Flickr_8k.devImages.txt: open " + filepath.Join(s.Dir, Flickr8kDir, "Flickr_8k.devImages.txt") + ": no such file or directory"
	if err := s.FetchArchive(a); err == nil || err.Error() != want {
		t.Fatalf("a pinned file missing from the archive: %v, want %q", err, want)
	}
}

// The downloaded archive is removed once extracted: the dataset's 1 GB zip
// is not kept beside the photos taken from it.
func TestFetchArchiveRemovesTheArchive(t *testing.T) {
	srv := server(t, map[string][]byte{"/a.zip": zipped(t, map[string]string{"Flicker8k_Dataset/1.jpg": "jpeg"})})
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: httpGet}
	if err := s.FetchArchive(Archive{URL: srv.URL + "/a.zip", Extract: Flickr8k[0].Extract}); err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(s.Dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "data" {
		t.Errorf("the folder holds %q, want [data] alone", names)
	}
}

// A zip's folder entries are skipped, not extracted as files: an Extract that
// keeps members' paths gets sub/a.txt from "sub/" then "sub/a.txt" (a file
// named sub had stood in its folder's way).
func TestFetchArchiveSkipsFolderEntries(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if _, err := zw.Create("sub/"); err != nil {
		t.Fatal(err)
	}
	w, err := zw.Create("sub/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	srv := server(t, map[string][]byte{"/a.zip": buf.Bytes()})
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: httpGet}
	if err := s.FetchArchive(Archive{URL: srv.URL + "/a.zip", Extract: func(m string) string { return m }}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, "sub", "a.txt")); err != nil || string(b) != "x" {
		t.Errorf("sub/a.txt: %q, %v; want x", b, err)
	}
}

// A member whose bytes do not match its CRC-32 (a damaged download) fails the
// archive and leaves no file.
func TestFetchArchiveRefusesADamagedMember(t *testing.T) {
	b := zipped(t, map[string]string{"Flicker8k_Dataset/1.jpg": "photo bytes"})
	b = bytes.Replace(b, []byte("photo bytes"), []byte("photo bytez"), 1)
	srv := server(t, map[string][]byte{"/a.zip": b})
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: httpGet}
	err := s.FetchArchive(Archive{URL: srv.URL + "/a.zip", Extract: Flickr8k[0].Extract})
	if want := "assets: extracting Flicker8k_Dataset/1.jpg from " + srv.URL + "/a.zip: zip: checksum error"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir, Flickr8kDir, "images")); len(entries) != 0 {
		t.Errorf("a damaged member left %v", entries)
	}
}

// An Extract that keeps a member's own path cannot write outside the folder
// through "../" in the archive.
func TestFetchArchiveStaysInItsFolder(t *testing.T) {
	srv := server(t, map[string][]byte{"/a.zip": zipped(t, map[string]string{"../../escaped.jpg": "jpeg"})})
	root := t.TempDir()
	s := &Store{Dir: filepath.Join(root, "a", "b"), Managed: true, Fetch: httpGet}
	err := s.FetchArchive(Archive{URL: srv.URL + "/a.zip", Extract: func(m string) string { return m }})
	want := "assets: extracting ../../escaped.jpg from " + srv.URL + "/a.zip: ../../escaped.jpg is not a path inside " + s.Dir + "; the archive is not the published dataset"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(root, "escaped.jpg")); !os.IsNotExist(err) {
		t.Errorf("the member was written outside the folder (%v)", err)
	}
}

// The pinned checksums are those of the real files (CI points CAPTIONER_ASSETS at them).
func TestPinnedChecksumsMatchTheSharedAssets(t *testing.T) {
	dir := testassets.Dir(t, "the pinned checksums are verified against its files")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(true); err != nil {
		t.Fatal(err)
	}
	for rel, want := range Flickr8k[1].Checks {
		if got, err := FileSHA256(filepath.Join(dir, rel)); err != nil || got != want {
			t.Errorf("%s: SHA-256 %s (%v), pinned %s", rel, got, err, want)
		}
	}
}

// A download that stops sending fails after the stall timeout, however long
// the whole download may take, and keeps nothing.
func TestStalledDownloadFails(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		select { // stall until the client gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	withKnown(t, []File{{"models/w.tflite", srv.URL + "/w", sum([]byte("w"))}})
	var log strings.Builder
	s := &Store{Dir: t.TempDir(), Managed: true, Fetch: newHTTPGet(50*time.Millisecond, http.ProxyFromEnvironment), Log: &log}
	_, err := s.Path("models/w.tflite")
	dst := filepath.Join(s.Dir, "models", "w.tflite")
	want := "assets: downloading " + srv.URL + "/w: the connection stalled: no data for 50ms (check the network, pass --assets with a folder that has the file, or download it by hand into " + dst + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, errStalled) {
		t.Errorf("%v does not match errStalled", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
		t.Errorf("a stalled download left %v", entries)
	}
	// The bar was drawn for the 1 KiB received out of 4 (not a terminal: one plain line at the end).
	if !strings.HasPrefix(log.String(), "models/w.tflite  25% |######                  | 1/4 [") {
		t.Errorf("progress %q", log.String())
	}
}

// A proxy that takes the connection and never answers its CONNECT fails
// within the stalls too: net/http waits a minute for that answer, and setup
// sat silent all that time.
func TestSilentProxyFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://" + ln.Addr().String()) }
	start := time.Now()
	_, err = newHTTPGet(50*time.Millisecond, proxy)("https://example.invalid/w.tflite")
	if want := "the connection stalled: no response within 150ms (through a proxy that does not answer?)"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("failed after %s, want about 150ms", took)
	}
}

// The wait for headers is counted afresh at each redirect: nine answers (eight
// redirects; net/http stops at ten) that each come within the stall may take
// longer than the three stalls a request is given in all. Each takes under
// two fifths of the stall, so a busy machine (CI runs packages' tests side by
// side on two cores) does not push one past it.
func TestRedirectsEachGetTheirWait(t *testing.T) {
	srv := redirecting(t, 8, 150*time.Millisecond) // each under the 400 ms stall
	body, err := newHTTPGet(400*time.Millisecond, http.ProxyFromEnvironment)(srv.URL + "/w?hop=0")
	if err != nil {
		t.Fatalf("nine answers of 150 ms each (1.35 s, over three 400 ms stalls): %v", err)
	}
	defer body.Close()
	if b, _ := io.ReadAll(body); string(b) != "weights" {
		t.Errorf("body %q", b)
	}
}

// redirecting is a server that answers /w?hop=N, after wait, with a redirect
// to hop N+1 while N < hops, and then with the file ("weights").
func redirecting(t *testing.T, hops int, wait time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait)
		if hop, _ := strconv.Atoi(r.URL.Query().Get("hop")); hop < hops {
			http.Redirect(w, r, fmt.Sprintf("/w?hop=%d", hop+1), http.StatusFound)
			return
		}
		w.Write([]byte("weights"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A download follows nine redirects and stops at the tenth (net/http's own
// limit), though the request after it would have had the file: a server
// that redirects on and on does not hold it for ever.
func TestTooManyRedirectsFail(t *testing.T) {
	srv := redirecting(t, 10, 0)
	body, err := newHTTPGet(5*time.Second, http.ProxyFromEnvironment)(srv.URL + "/w?hop=0")
	if err == nil {
		body.Close()
	}
	if want := `Get "/w?hop=10": stopped after 10 redirects`; err == nil || err.Error() != want {
		t.Errorf("ten redirects: %v, want %q", err, want)
	}
}

// A server that never answers fails the same way, while waiting for headers.
func TestSilentServerFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	_, err := newHTTPGet(50*time.Millisecond, http.ProxyFromEnvironment)(srv.URL)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("got %v, want a response header timeout", err)
	}
}

// Verify reports a Known file whose contents differ from the pinned checksum,
// and one that cannot be read (a folder in its place), by name; in the cache,
// setup downloads it again (a user's folder: cmd/captioner's TestOpenChoosesTheFolder).
func TestVerifyReportsDamagedFiles(t *testing.T) {
	good := []byte("weights")
	withKnown(t, []File{
		{"models/w.tflite", "", sum(good)},
		{"models/bad.tflite", "", sum(good)},
		{"models/dir.tflite", "", sum(good)},
	})
	s := &Store{Dir: t.TempDir(), Managed: true}
	for rel, body := range map[string][]byte{"models/w.tflite": good, "models/bad.tflite": []byte("tampered")} {
		if err := os.MkdirAll(filepath.Join(s.Dir, "models"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Dir, rel), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(s.Dir, "models", "dir.tflite")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := "assets: " + filepath.Join(s.Dir, "models", "bad.tflite") + " has SHA-256 " + sum([]byte("tampered")) + ", want " + sum(good) + " (a different or damaged file: delete it and run `captioner setup`)\n" +
		"assets: read " + dir + ": is a directory"
	if err := s.Verify(false); err == nil || err.Error() != want {
		t.Errorf("Verify = %v\nwant %s", err, want)
	}
}

// Without a configured folder or CAPTIONER_ASSETS the store is the managed
// assets folder under CAPTIONER_CACHE; CAPTIONER_ASSETS names a user folder.
func TestOpenChoosesTheFolder(t *testing.T) {
	cache, user := t.TempDir(), t.TempDir()
	t.Setenv("CAPTIONER_CACHE", cache)
	t.Setenv("CAPTIONER_ASSETS", "")
	if d, err := CacheDir(); err != nil || d != cache {
		t.Errorf("CacheDir() = %q, %v; want CAPTIONER_CACHE, %q", d, err, cache)
	}
	// A download into the cache (on first use by caption, classify or serve)
	// shows its progress on stderr; a user folder downloads nothing.
	for _, c := range []struct {
		env     string
		dir     string
		managed bool
		log     io.Writer
	}{
		{"", filepath.Join(cache, "assets"), true, os.Stderr},
		{user, user, false, nil},
	} {
		t.Setenv("CAPTIONER_ASSETS", c.env)
		if s, err := Open(""); err != nil || s.Dir != c.dir || s.Managed != c.managed || s.Log != c.log {
			t.Errorf("CAPTIONER_ASSETS=%q: Open(\"\") = %+v, %v; want Dir %s, Managed %v, Log %v", c.env, s, err, c.dir, c.managed, c.log)
		}
	}
}

// Without CAPTIONER_CACHE the cache is captioner's folder in the user's
// cache folder ($XDG_CACHE_HOME), not that folder itself, which other
// programs share.
func TestCacheDirUnderXDGCache(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("CAPTIONER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", xdg)
	if d, err := CacheDir(); err != nil || d != filepath.Join(xdg, "captioner") {
		t.Errorf("CacheDir() = %q, %v; want %q", d, err, filepath.Join(xdg, "captioner"))
	}
}

// A folder named relative to the working directory is kept as an absolute
// path (Store.Dir says it is one): a later change of directory, or a path
// shown to the user, still names that folder.
func TestOpenMakesTheFolderAbsolute(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if s, err := Open("a"); err != nil || s.Dir != filepath.Join(root, "a") {
		t.Errorf("Open(\"a\") in %s = %+v, %v; want Dir %s", root, s, err, filepath.Join(root, "a"))
	}
}

// A folder that cannot be looked at (a path through a file) is an error that
// says why, not a crash nor "does not exist"; so is a file of the folder
// behind one (models a file), not "not found".
func TestFoldersThroughAFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(file, "sub"))
	want := "assets: stat " + filepath.Join(file, "sub") + ": not a directory; pass --assets (or set CAPTIONER_ASSETS) with a folder laid out like shared/, or set neither and run `captioner setup` to download into the cache"
	if err == nil || err.Error() != want {
		t.Errorf("Open(file/sub): %v, want %q", err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "models"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Store{Dir: dir, Fetch: func(string) (io.ReadCloser, error) { t.Fatal("fetched into a user folder"); return nil, nil }}
	_, err = s.Path("models/x.tflite")
	if want := "assets: stat " + filepath.Join(dir, "models", "x.tflite") + ": not a directory"; err == nil || err.Error() != want {
		t.Errorf("Path(models/x.tflite) with models a file: %v, want %q", err, want)
	}
}

// The archives' members land in the dataset's folder under their base names
// only, whatever folders (or ..) the zip gives them; the photos are those of
// Flicker8k_Dataset/, not macOS's resource forks beside them.
func TestFlickr8kMembers(t *testing.T) {
	for _, c := range []struct {
		archive     int
		member, rel string
	}{
		{0, "Flicker8k_Dataset/1000268201_693b08cb0e.jpg", Flickr8kDir + "/images/1000268201_693b08cb0e.jpg"},
		{0, "Flicker8k_Dataset/../../../evil.jpg", Flickr8kDir + "/images/evil.jpg"},
		{0, "__MACOSX/Flicker8k_Dataset/._1000268201_693b08cb0e.jpg", ""},
		{0, "Flicker8k_Dataset/notes.txt", ""},
		{1, "Flickr8k_text/Flickr8k.token.txt", Flickr8kDir + "/Flickr8k.token.txt"},
		{1, "../../Flickr_8k.trainImages.txt", Flickr8kDir + "/Flickr_8k.trainImages.txt"},
		{1, "Flickr_8k.devImages.txt", Flickr8kDir + "/Flickr_8k.devImages.txt"},
		{1, "Flickr_8k.testImages.txt", Flickr8kDir + "/Flickr_8k.testImages.txt"},
		{1, "readme.txt", ""},
	} {
		if got := Flickr8k[c.archive].Extract(c.member); got != c.rel {
			t.Errorf("archive %d: member %q extracts to %q, want %q", c.archive, c.member, got, c.rel)
		}
	}
}

// A slow download that keeps moving is not a stalled one: each byte restarts
// the stall, so eight chunks 60 ms apart (480 ms) pass a 300 ms stall (with
// 240 ms to spare for a loaded machine's scheduling).
func TestSlowDownloadIsNotStalled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 8 {
			w.Write([]byte("weights "))
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	body, err := newHTTPGet(300*time.Millisecond, http.ProxyFromEnvironment)(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if b, err := io.ReadAll(body); err != nil || string(b) != strings.Repeat("weights ", 8) {
		t.Errorf("read %q, %v; want the eight chunks", b, err)
	}
}

// Only a 200 is the file: a partial answer (or any other success) is not.
func TestPartialContentFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("weig"))
	}))
	t.Cleanup(srv.Close)
	if _, err := newHTTPGet(time.Second, http.ProxyFromEnvironment)(srv.URL); err == nil || err.Error() != "HTTP 206 Partial Content" {
		t.Fatalf("got %v, want HTTP 206 Partial Content", err)
	}
}

// sizedBody is a download that announces its size, as stallBody does.
type sizedBody struct {
	io.Reader
	size int64
}

func (sizedBody) Close() error  { return nil }
func (b sizedBody) Size() int64 { return b.size }

// The progress bar counts every byte, however small the reads: 4 KiB read a
// byte at a time is 4 KiB.
func TestProgressCountsSmallReads(t *testing.T) {
	data := bytes.Repeat([]byte("w"), 4096)
	withKnown(t, []File{{"models/w.tflite", "https://example.invalid/w", sum(data)}})
	var log strings.Builder
	s := &Store{Dir: t.TempDir(), Managed: true, Log: &log, Fetch: func(string) (io.ReadCloser, error) {
		return sizedBody{iotest.OneByteReader(bytes.NewReader(data)), int64(len(data))}, nil
	}}
	if _, err := s.Path("models/w.tflite"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if want := "models/w.tflite 100% |########################| 4/4 ["; !strings.HasPrefix(lines[len(lines)-1], want) {
		t.Errorf("progress %q, want its last line to begin %q", log.String(), want)
	}
}

// A file the cache lacks and setup does not download is not setup's to fix.
func TestCacheLacksAnUnknownFile(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: dir, Managed: true, Fetch: func(string) (io.ReadCloser, error) { t.Fatal("fetched a file no URL is known for"); return nil, nil }}
	_, err := s.Path("models/other.tflite")
	want := "assets: models/other.tflite not found in the cache " + dir + ", and it is no public file setup downloads: pass --assets (or set CAPTIONER_ASSETS) with a folder that has it"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
