package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestWriteFileReplacesWholeFileReadably(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.json")
	if err := os.WriteFile(p, []byte("old contents, longer than the new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("read %q, %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestWriteFileFailureLeavesDestinationAlone(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
	// A destination that is a non-empty folder cannot be replaced: the old one stays.
	p := filepath.Join(dir, "busy")
	os.MkdirAll(filepath.Join(p, "child"), 0o755)
	if err := WriteFile(p, []byte("x")); err == nil {
		t.Fatal("renaming over a non-empty folder succeeded")
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		t.Fatalf("destination damaged: %v %v", st, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

// A write that fails part-way (a full disk; here the file size limit, which
// Go's runtime meets with EFBIG, not a signal) must not be renamed over the
// destination: a half-written checkpoint would replace the good one.
func TestShortWriteLeavesDestinationAlone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "checkpoint.safetensors")
	if err := os.WriteFile(p, []byte("the good one"), 0o644); err != nil {
		t.Fatal(err)
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	small := syscall.Rlimit{Cur: 1 << 10, Max: limit.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Skipf("cannot lower the file size limit: %v", err)
	}
	err := WriteFile(p, make([]byte, 4<<10))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Errorf("WriteFile past the file size limit: %v, want EFBIG", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "the good one" {
		t.Errorf("destination after the failed write: %d bytes starting %q, %v", len(b), b[:min(len(b), 16)], err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

// The temporary goes beside the destination, not into TMPDIR: a rename from
// another file system would fail (EXDEV), and TMPDIR may not exist at all.
func TestWriteFileIgnoresTMPDIR(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", filepath.Join(dir, "no-such-tmp"))
	p := filepath.Join(dir, "vocab.json")
	if err := WriteFile(p, []byte("{}")); err != nil {
		t.Fatalf("WriteFile with TMPDIR missing: %v", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "{}" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// RemoveStale removes what WriteFile leaves when killed mid-write (NAME.tmp
// and digits), and nothing else: not a user's notes.tmp or page.tmpl.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale, kept := []string{"model.json.tmp123", "curves.csv.tmp9"}, []string{"model.json", "notes.tmp", "page.tmpl", "x.tmpfile"}
	for _, name := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveStale(dir); err != nil {
		t.Fatal(err)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	slices.Sort(kept)
	if !slices.Equal(left, kept) {
		t.Errorf("left %q, want %q", left, kept)
	}
	// One it cannot remove (here a folder that is not empty) is an error.
	if err := os.MkdirAll(filepath.Join(dir, "model.json.tmp7", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStale(dir); err == nil {
		t.Error("RemoveStale left model.json.tmp7 without an error")
	}
}

// A link to a file has its file replaced and stays a link; a pipe (a device
// alike: eval --captions /dev/stdout, /dev/null) is written through and stays
// what it is: renaming over it put a file in its place, and as root
// --captions /dev/null replaced the system's /dev/null.
func TestWriteFileKeepsLinksPipesAndDevices(t *testing.T) {
	dir := t.TempDir()
	file, link := filepath.Join(dir, "scores.json"), filepath.Join(dir, "latest.json")
	if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("scores.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != "scores.json" {
		t.Errorf("the link was replaced: readlink %q, %v", target, err)
	}
	if b, _ := os.ReadFile(file); string(b) != "new" {
		t.Errorf("the linked file holds %q, want new", b)
	}

	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte)
	go func() {
		f, err := os.Open(pipe)
		if err != nil {
			read <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		read <- b
	}()
	if err := WriteFile(pipe, []byte("captions")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(pipe); err != nil || st.Mode().Type() != fs.ModeNamedPipe {
		t.Fatalf("the pipe is now %v (%v)", st.Mode(), err) // its reader waits on the old one for ever
	}
	if b := <-read; string(b) != "captions" {
		t.Errorf("the pipe's reader got %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("files left behind: %v", ents)
	}
}

// A write through to a pipe or device that fails is the caller's error:
// /dev/full, or a reader that went away.
func TestWriteThroughFailureIsReturned(t *testing.T) {
	pipe := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.Open(pipe)
		if err != nil {
			return
		}
		f.Read(make([]byte, 1))
		f.Close()
	}()
	if err := WriteFile(pipe, make([]byte, 1<<20)); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("writing 1 MiB to a pipe whose reader left after a byte: %v, want EPIPE", err)
	}
}

// A read-only file is not replaced, through a link neither: renaming over it
// needs only the folder's permission, and import --out had replaced one.
// CanWrite finds it, and a folder that takes no new file, before the work.
func TestReadOnlyFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	file, link := filepath.Join(dir, "notes.txt"), filepath.Join(dir, "link")
	if err := os.WriteFile(file, []byte("precious"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes.txt", link); err != nil {
		t.Fatal(err)
	}
	want := file + " is read-only (mode -r--r--r--): make it writable (chmod u+w) to replace it"
	for _, p := range []string{file, link} {
		if err := WriteFile(p, []byte("weights")); err == nil || err.Error() != want {
			t.Errorf("WriteFile(%s): %v, want %q", p, err, want)
		}
		if err := CanWrite(p); err == nil || err.Error() != want {
			t.Errorf("CanWrite(%s): %v, want %q", p, err, want)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Errorf("the read-only file holds %q", b)
	}
	if err := CanWrite(filepath.Join(dir, "new.json")); err != nil {
		t.Errorf("CanWrite of a new file in a writable folder: %v", err)
	}
	// A folder that is not there is said of the folder, not of a temporary.
	gone := filepath.Join(dir, "gone", "scores.json")
	if err := CanWrite(gone); err == nil || err.Error() != gone+" cannot be written: its folder "+filepath.Dir(gone)+" takes no new file (no such file or directory)" {
		t.Errorf("CanWrite in a missing folder: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("CanWrite left files behind: %v", ents)
	}
	if os.Geteuid() == 0 {
		t.Skip("root writes into any folder: the rest needs an ordinary user")
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := CanWrite(filepath.Join(dir, "new.json")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("CanWrite in a read-only folder: %v, want permission denied", err)
	}
}

// Only a file with no write permission for anyone is refused: one its owner
// may not write but its group may (0464) is replaced like any other. A check
// of the owner's bit alone had refused it.
func TestWriteFileReplacesAGroupWritableFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "curves.csv")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o464); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new")); err != nil {
		t.Fatalf("WriteFile over a file of mode 0464: %v", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
		t.Errorf("read %q, %v; want new", b, err)
	}
}

// The temporaries WriteFile makes are named as RemoveStale looks for them:
// one left behind (its process killed before the rename) is removed.
func TestRemoveStaleFindsWriteFilesTemporaries(t *testing.T) {
	dir := t.TempDir()
	tmp, _, err := tempBeside(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if err := RemoveStale(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("RemoveStale left %v, the temporary %s", ents, filepath.Base(tmp.Name()))
	}
}

// One temporary it cannot remove fails RemoveStale even when one after it is
// removed: the error is not lost to the later success.
func TestRemoveStaleKeepsTheFirstError(t *testing.T) {
	dir := t.TempDir()
	// Glob sorts: a.json.tmp1, which cannot be removed, comes first.
	if err := os.MkdirAll(filepath.Join(dir, "a.json.tmp1", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.json.tmp2"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveStale(dir)
	if want := "remove " + filepath.Join(dir, "a.json.tmp1") + ": directory not empty"; err == nil || err.Error() != want {
		t.Errorf("RemoveStale: %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.json.tmp2")); !os.IsNotExist(err) {
		t.Errorf("a.json.tmp2 was not removed (stat: %v)", err)
	}
}

// CanWrite passes a pipe or a device as it is, without a temporary beside it:
// the folder that holds one may take no new file. /dev/stdout piped into
// another program is /proc/self/fd/1, a pipe in a folder where no one, root
// included, creates a file; a pipe in a read-only folder is the same for an
// ordinary user.
func TestCanWritePassesPipesInFoldersThatTakeNoFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	stdout := fmt.Sprintf("/proc/self/fd/%d", w.Fd())
	if _, err := os.Stat(stdout); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if err := CanWrite(stdout); err != nil {
		t.Errorf("CanWrite(%s), a pipe: %v", stdout, err)
	}

	if os.Geteuid() == 0 {
		t.Skip("root writes into any folder: a pipe in a read-only one needs an ordinary user")
	}
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := CanWrite(pipe); err != nil {
		t.Errorf("CanWrite of a pipe in a read-only folder: %v", err)
	}
}
