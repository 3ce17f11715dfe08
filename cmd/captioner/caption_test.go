package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	imgpng "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

// shippedModel is the default model folder, relative to this package.
var shippedModel = filepath.Join("..", "..", filepath.FromSlash(config.DefaultModel))

// mergeModel is the shipped merge model (--model, or beside the default with
// server.models).
var mergeModel = filepath.Join("..", "..", "models", "flickr8k-merge-lstm")

// resetFlags puts the named flags of the command name back to their
// defaults now and when t ends: the commands are one process's, and flags a
// test sets would carry over into later tests that leave them at their
// defaults.
func resetFlags(t *testing.T, name string, flags ...string) {
	cmd, _, err := rootCmd.Find([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	reset := func() {
		for _, name := range flags {
			// A persistent flag of the root is in cmd.Flags() only once cmd
			// has run: a test run alone reset it before that.
			f := cmd.Flags().Lookup(name)
			if f == nil {
				f = cmd.InheritedFlags().Lookup(name)
			}
			if f == nil {
				t.Fatalf("resetFlags: %s has no flag --%s", cmd.Name(), name)
			}
			f.Value.Set(f.DefValue)
			f.Changed = false
		}
	}
	reset() // what an earlier test left set
	t.Cleanup(reset)
}

// run executes the CLI in-process and returns stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runStderr(t, args...)
	return out, err
}

// runStderr is run that returns stderr too.
func runStderr(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	rootCmd.SetArgs(args)
	err = rootCmd.Execute()
	return out.String(), errOut.String(), err
}

func TestCaptionJSONWithShippedModel(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	photos := []string{
		filepath.Join(assets, "samples", "flickr8k_fullres", "1019077836_6fc9b15408.jpg"), // a dog on grass
		filepath.Join(assets, "samples", "grace_hopper.bmp"),
	}
	out, err := run(t, append([]string{"caption", "--json", "--device", "cpu", "--assets", assets, "--model", shippedModel}, photos...)...)
	if err != nil {
		t.Fatal(err)
	}
	var recs []captionRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("caption --json printed no JSON array: %v\n%s", err, out)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records for 2 images", len(recs))
	}
	for i, r := range recs {
		if r.Image != photos[i] || r.Caption == "" || r.Score >= 0 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if !strings.Contains(recs[0].Caption, "dog") {
		t.Errorf("the dog photo got %q: the shipped model does not see the dog", recs[0].Caption)
	}
	_, err = run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "no-such-photo.jpg")
	if err == nil || !strings.Contains(err.Error(), "1 of 1 images could not be read") {
		t.Errorf("missing photo: got %v, want 1 of 1 images could not be read", err)
	}
}

// TestCaptionReportsEachBadImage: unreadable images are reported each in its
// place, the others are captioned, and the command fails after printing them.
func TestCaptionReportsEachBadImage(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	dog := filepath.Join(assets, "samples", "flickr8k_fullres", "1019077836_6fc9b15408.jpg")
	notes := filepath.Join(t.TempDir(), "notes.jpg")
	if err := os.WriteFile(notes, []byte("hello, this is not a photo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "gone.jpg")
	args := []string{"caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1"}
	cfg, err := config.Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	pre := pipeline.NewPreprocessor(encoder.Config{Input: 224}, cfg.Image)
	wantErr := func(path string) string {
		_, err := pre.File(path)
		return err.Error()
	}

	out, err := run(t, append(args, "--json", notes, dog, missing)...)
	if err == nil || err.Error() != "2 of 3 images could not be read" {
		t.Errorf("exit error %v, want 2 of 3 images could not be read", err)
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("caption --json printed %d records (%v), want 3:\n%s", len(recs), err, out)
	}
	// A record's error leaves out the path the record names; a missing file's
	// (the file system's own error) keeps it.
	for i, want := range []map[string]any{
		{"image": notes, "error": strings.TrimPrefix(wantErr(notes), notes+": ")},
		{"image": dog, "caption": recs[1]["caption"], "tokens": recs[1]["tokens"], "score": recs[1]["score"],
			"confidence": recs[1]["confidence"], "tags": recs[1]["tags"]}, // a caption record: no error, no other field
		{"image": missing, "error": wantErr(missing)},
	} {
		if fmt.Sprint(recs[i]) != fmt.Sprint(want) {
			t.Errorf("record %d: %v, want %v", i, recs[i], want)
		}
	}
	if c, _ := recs[1]["caption"].(string); !strings.Contains(c, "dog") {
		t.Errorf("the dog photo got %q", c)
	}

	rootCmd.SetArgs(append(args, "--json=false", notes, dog)) // flags keep their values between in-process runs
	var stdout, stderr bytes.Buffer
	rootCmd.SetOut(&stdout)
	rootCmd.SetErr(&stderr)
	err = rootCmd.Execute()
	if want := dog + "\t" + recs[1]["caption"].(string) + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if want := "caption: " + wantErr(notes) + "\n"; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", stderr.String(), want)
	}
	if err == nil || err.Error() != "1 of 2 images could not be read" {
		t.Errorf("exit error %v, want 1 of 2 images could not be read", err)
	}
	// One image: its caption alone, without the path.
	out, err = run(t, append(args, "--json=false", dog)...)
	if want := recs[1]["caption"].(string) + "\n"; err != nil || out != want {
		t.Errorf("one image: stdout %q, %v; want %q", out, err, want)
	}
}

// An IMAGE of - is standard input: the same caption as the file it holds.
func TestCaptionReadsStandardInput(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	dog := filepath.Join(assets, "samples", "flickr8k_fullres", "1019077836_6fc9b15408.jpg")
	f, err := os.Open(dog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	resetFlags(t, "caption", "beam", "json")
	out, err := run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", "-", dog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "-\t") || lines[1] != dog+"\t"+strings.TrimPrefix(lines[0], "-\t") {
		t.Errorf("caption - %s printed %q; want the same caption for standard input (-) and the file", dog, out)
	}
	// Standard input holds one photo: a second - is refused before any is read.
	_, err = run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "-", dog, "-")
	if want := "- (standard input) is given more than once, and holds one photo: give it once"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("caption - %s -: %v, want %q", dog, err, want)
	}
}

// TestCaptionFolder: a folder stands for its image files, in name order and
// with their paths (one image or many), not its subfolders or other files;
// each caption is the one its file gets alone. It failed with "is a
// directory", so a glob that matched a subfolder exited 1.
func TestCaptionFolder(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	samples := filepath.Join(assets, "samples", "flickr8k_fullres")
	dir := t.TempDir()
	for _, name := range []string{"b.jpg", "a.JPG"} {
		if err := os.Symlink(filepath.Join(samples, "1019077836_6fc9b15408.jpg"), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a photo"), 0o644)
	fifo := filepath.Join(dir, "pipe.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Were the pipe read, caption would wait for a writer: this one writes no
	// image and goes, so that a regression fails rather than hangs. Cleanup
	// opens the reading end, which lets it go.
	go func(fifo string) { // its own copy: the test moves the pipe below
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.WriteString("not an image")
			f.Close()
		}
	}(fifo)
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink(filepath.Join(samples, "1019077836_6fc9b15408.jpg"), filepath.Join(dir, "sub", "c.jpg"))
	resetFlags(t, "caption", "beam", "json")
	caption := func(args ...string) string {
		t.Helper()
		out, err := run(t, append([]string{"caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false"}, args...)...)
		if err != nil {
			t.Fatalf("caption %v: %v", args, err)
		}
		return out
	}
	alone := strings.TrimSuffix(caption(filepath.Join(dir, "b.jpg")), "\n")
	want := filepath.Join(dir, "a.JPG") + "\t" + alone + "\n" + filepath.Join(dir, "b.jpg") + "\t" + alone + "\n"
	got, stderr, err := runStderr(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", dir)
	if err != nil || got != want {
		t.Errorf("caption %s printed\n%s(%v)\nwant\n%s", dir, got, err, want)
	}
	if want := "warning: " + filepath.Join(dir, "pipe.jpg") + " is a named pipe, not a photo file: left out\n"; !strings.Contains(stderr, want) {
		t.Errorf("caption %s: stderr %q lacks %q", dir, stderr, want)
	}
	// Its subfolder is said to be left out (its photos had been, silently).
	if want := "warning: " + dir + " has 1 subfolders, not searched: pass --recursive, or name them too, e.g. " + dir + "/*/\n"; !strings.Contains(stderr, want) {
		t.Errorf("caption %s: stderr %q lacks %q", dir, stderr, want)
	}
	// With --recursive its subfolder's photo is captioned too, after the
	// folder's own (by path).
	got, stderr, err = runStderr(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", "--recursive", dir)
	if want := want + filepath.Join(dir, "sub", "c.jpg") + "\t" + alone + "\n"; err != nil || got != want || strings.Contains(stderr, "subfolders") {
		t.Errorf("caption --recursive %s printed\n%s(%v, %q)\nwant\n%s", dir, got, err, stderr, want)
	}
	resetFlags(t, "caption", "recursive")
	sub := filepath.Join(dir, "sub")
	if got, want := caption(sub), filepath.Join(sub, "c.jpg")+"\t"+alone+"\n"; got != want {
		t.Errorf("caption of a folder of one photo printed %q, want %q", got, want)
	}
	// A folder whose only image name is the pipe: nothing to caption, said
	// as such (it reached the encoder as a batch of 0).
	pipes := filepath.Join(dir, "pipes")
	os.Mkdir(pipes, 0o755)
	if err := os.Rename(fifo, filepath.Join(pipes, "pipe.jpg")); err != nil {
		t.Fatal(err)
	}
	fifo = filepath.Join(pipes, "pipe.jpg")
	_, err = run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", pipes)
	if want := "no photo files in " + pipes + ": none of the 1 named as images is a regular file (see the warnings above)"; err == nil || err.Error() != want {
		t.Errorf("caption of a folder of a pipe: %v, want %q", err, want)
	}
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	_, err = run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", filepath.Join(dir, "empty"))
	if want := "no image files in " + filepath.Join(dir, "empty"); err == nil || err.Error() != want {
		t.Errorf("caption of an empty folder: %v, want %q", err, want)
	}
	trips := filepath.Join(dir, "empty")
	os.Mkdir(filepath.Join(trips, "trip1"), 0o755)
	_, err = run(t, "caption", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--beam", "1", "--json=false", trips)
	if want := "no image files in " + trips + ", whose 1 subfolders are not searched: pass --recursive, or name them too, e.g. " + trips + "/*/"; err == nil || err.Error() != want {
		t.Errorf("caption of a folder of a subfolder: %v, want %q", err, want)
	}
}

// The README's first command captions the two sample photos: guided by the
// encoder's tags, the cat is a cat and Grace Hopper a person in uniform; with
// --guide=false they are the plain model's captions, which name neither.
func TestCaptionSamplesAreGuidedByTags(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	photos := []string{filepath.Join(assets, "samples", "cat_720p.jpg"), filepath.Join(assets, "samples", "grace_hopper.bmp")}
	caption := func(guide bool) []captionRecord {
		out, err := run(t, append([]string{"caption", "--json", "--guide=" + strconv.FormatBool(guide), "--device", "cpu", "--assets", assets, "--model", shippedModel}, photos...)...)
		if err != nil {
			t.Fatal(err)
		}
		var recs []captionRecord
		if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 2 {
			t.Fatalf("caption --json: %v\n%s", err, out)
		}
		for _, r := range recs {
			if r.Caption != text.Sentence(r.Tokens) || !(r.Confidence > 0 && r.Confidence < 1) {
				t.Errorf("%s: caption %q of tokens %q, confidence %g", r.Image, r.Caption, r.Tokens, r.Confidence)
			}
		}
		return recs
	}
	plain, guided := caption(false), caption(true)
	for i, want := range []struct{ tag, names string }{{"cat", "cat"}, {"uniform", "person"}} {
		g, p := guided[i], plain[i]
		if len(g.Tags) == 0 || g.Tags[0].Noun != want.tag || g.Tags[0].Prob < 0.6 {
			t.Errorf("%s: tags %+v, want %s first at prob >= 0.6", g.Image, g.Tags, want.tag)
		}
		if !tags.Mentions(g.Caption, want.tag) || !tags.Mentions(g.Caption, want.names) || !slices.Equal(g.Guided, []string{want.tag}) {
			t.Errorf("%s: guided caption %q (guided %q) should name %s and %s", g.Image, g.Caption, g.Guided, want.tag, want.names)
		}
		if tags.Mentions(p.Caption, want.tag) || len(p.Guided) != 0 || !slices.Equal(p.Tags, g.Tags) {
			t.Errorf("%s: plain caption %q (guided %q, tags %+v): want it without %s, the same tags", p.Image, p.Caption, p.Guided, p.Tags, want.tag)
		}
	}
}

func TestDescribePrintsShapesAndParameterCount(t *testing.T) {
	out, err := run(t, "describe", "--model", mergeModel)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decoder.ReadConfig(filepath.Join(mergeModel, decoder.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"digraph merge_lstm", "(B, T, 256)", "Embedding 2541x256", "LSTM 512"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	// By hand: image 1280x512+512, embedding 2541x256, LSTM 4x512x(256+512)+2048,
	// dense 512x256+256, output 256x2541+2541.
	if want := "3665645 parameters"; c.NumParams() != 3665645 || !strings.Contains(out, want) {
		t.Errorf("describe: want %q (config says %d)", want, c.NumParams())
	}
}

// TestDescribeKeepsOtherFiles: describe --png and --svg replace no file that
// is not such a picture (--png naming the model's weights had replaced them
// with the drawing), refused before anything is written; they write, and
// then replace, their own.
func TestDescribeKeepsOtherFiles(t *testing.T) {
	resetFlags(t, "describe", "png", "svg")
	model := t.TempDir()
	for _, f := range []string{decoder.ConfigFile, decoder.WeightsFile, pipeline.VocabFile} {
		b, err := os.ReadFile(filepath.Join(mergeModel, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(model, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	weights := filepath.Join(model, decoder.WeightsFile)
	before, _ := os.ReadFile(weights)
	for _, flag := range []string{"--png", "--svg"} {
		other := map[string]string{"--png": "--svg", "--svg": "--png"}[flag]
		_, err := run(t, "describe", "--model", model, flag, weights, other, "")
		what := map[string]string{"--png": "a PNG that describe drew", "--svg": "an SVG that describe drew"}[flag]
		if want := flag + " " + weights + " exists and is not " + what + ": it would be overwritten; name another file"; err == nil || err.Error() != want {
			t.Errorf("describe %s WEIGHTS: %v, want %q", flag, err, want)
		}
	}
	if after, _ := os.ReadFile(weights); !bytes.Equal(after, before) {
		t.Fatal("a refused describe changed the weights")
	}
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("Graphviz's dot is not installed (scripts/install-deps.sh test installs it)")
	}
	png, svg := filepath.Join(model, "d.png"), filepath.Join(model, "d.svg")
	for range 2 {
		if _, err := run(t, "describe", "--model", model, "--png", png, "--svg", svg); err != nil {
			t.Fatal(err)
		}
	}
	// They are marked as describe's own, and still what they say they are.
	if !ownFile(png, describePNG) || !ownFile(svg, describeSVG) {
		t.Errorf("%s and %s are not marked as describe's", png, svg)
	}
	if f, err := os.Open(png); err != nil {
		t.Error(err)
	} else if _, err := imgpng.Decode(f); err != nil {
		t.Errorf("%s: %v", png, err)
	}
	var doc struct {
		XMLName xml.Name
	}
	if b, err := os.ReadFile(svg); err != nil || xml.Unmarshal(b, &doc) != nil || doc.XMLName.Local != "svg" {
		t.Errorf("%s is no SVG document: %v %.120q", svg, err, b)
	}
	// A PNG or SVG of someone else's, even one in a model's folder, is kept.
	for flag, name := range map[string]string{"--png": "curves.png", "--svg": "curves.svg"} {
		theirs := filepath.Join(model, name)
		b, _ := os.ReadFile(filepath.Join(shippedModel, name))
		os.WriteFile(theirs, b, 0o644)
		other := map[string]string{"--png": "--svg", "--svg": "--png"}[flag]
		if _, err := run(t, "describe", "--model", model, flag, theirs, other, ""); err == nil || !strings.Contains(err.Error(), "exists and is not") {
			t.Errorf("describe %s %s: %v, want a refusal", flag, name, err)
		}
	}
}

// TestBadFlagValueNamesTheFlag: a value out of range that a flag set is
// refused with the flag's name, as one from the environment names its variable.
func TestBadFlagValueNamesTheFlag(t *testing.T) {
	resetFlags(t, "caption", "beam")
	_, err := run(t, "caption", "--beam", "0", "photo.jpg")
	if want := "config: decode.beam: 0 is outside 1..32 (1 is greedy) (set by the flag --beam)"; err == nil || err.Error() != want {
		t.Errorf("caption --beam 0: %v, want %q", err, want)
	}
	// Whole numbers in plain decimal alone: pflag's own int flags read 010 as 8.
	for _, v := range []string{"010", "0x3", "1_0"} {
		_, err := run(t, "caption", "--beam", v, "photo.jpg")
		if want := `invalid argument "` + v + `" for "--beam" flag: ` + config.DecimalHint; err == nil || err.Error() != want {
			t.Errorf("caption --beam %s: %v, want %q", v, err, want)
		}
	}
}

// TestFlagsReachTheirSettings: each command's flags set their configuration
// keys, and a bad value names the flag that set it, or the environment
// variable when no flag was given.
func TestFlagsReachTheirSettings(t *testing.T) {
	for _, tc := range []struct {
		env, want string
		args      []string
	}{
		{"CAPTIONER_DECODE_MAX_LEN=0", "config: decode.max_len: 0 is outside 1..100 (set by the environment variable CAPTIONER_DECODE_MAX_LEN)", []string{"caption", "photo.jpg"}},
		{"", "config: decode.max_len: 0 is outside 1..100 (set by the flag --max-len)", []string{"caption", "--max-len", "0", "photo.jpg"}},
		{"", "config: threads: -1 is negative; use 0 for every core or a positive count (set by the flag --threads)", []string{"caption", "--threads", "-1", "photo.jpg"}},
		// Eval, serve and train with a second error from the environment (in
		// a key no flag sets: flags other tests set keep their values), so
		// that they fail at once even where the flag is lost, rather than
		// evaluating, serving or training.
		{"CAPTIONER_DECODE_TAGS=21", "config: decode.beam: 0 is outside 1..32 (1 is greedy) (set by the flag --beam)" +
			"\ndecode.tags: 21 is outside 0..20 (0: no tags) (set by the environment variable CAPTIONER_DECODE_TAGS)", []string{"eval", "--beam", "0"}},
		{"CAPTIONER_SERVER_QUEUE_SIZE=0", `config: server.addr: "localhost" is not HOST:PORT (e.g. 127.0.0.1:8080, or :8080 for every interface): address localhost: missing port in address (set by the flag --addr)` +
			"\nserver.queue_size: 0 must be positive (set by the environment variable CAPTIONER_SERVER_QUEUE_SIZE)", []string{"serve", "--addr", "localhost"}},
		{"CAPTIONER_TRAIN_PATIENCE=0", "config: train.patience: 0 must be positive (set by the environment variable CAPTIONER_TRAIN_PATIENCE)" +
			"\ntrain.lr: 0 is outside (0, 1]; Adam usually wants 1e-4..3e-3 (set by the flag --lr)", []string{"train", "--lr", "0"}},
		// A seed takes 64 bits.
		{"CAPTIONER_TRAIN_PATIENCE=0", "config: train.patience: 0 must be positive (set by the environment variable CAPTIONER_TRAIN_PATIENCE)" +
			"\ntrain.hidden: 0 must be positive (set by the flag --hidden)", []string{"train", "--hidden", "0", "--seed", "5000000000"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var flags []string // each case's flags go back to their defaults after it
			for _, a := range tc.args {
				if name, ok := strings.CutPrefix(a, "--"); ok {
					flags = append(flags, name)
				}
			}
			resetFlags(t, tc.args[0], flags...)
			if name, val, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(name, val)
			}
			if _, err := run(t, tc.args...); err == nil || err.Error() != tc.want {
				t.Errorf("%s captioner %v: %v, want %q", tc.env, tc.args, err, tc.want)
			}
		})
	}
}

// TestTooFewArgumentsShowHowToCall: a command run without its arguments says how
// to call it, not only how many arguments it got.
func TestTooFewArgumentsShowHowToCall(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"caption"}, "caption needs at least 1 image file, got 0: captioner caption [--beam K] [--json] [--attention DIR] IMAGE... [flags]"},
		{[]string{"classify"}, "classify needs at least 1 image file, got 0: captioner classify [--top N] [--json] IMAGE... [flags]"},
		{[]string{"average", "runs/a"}, "average needs at least 2 model folders, got 1: captioner average --out DIR MODEL MODEL... [flags]"},
	} {
		if _, err := run(t, tc.args...); err == nil || err.Error() != tc.want {
			t.Errorf("captioner %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// failingWriter is an output that cannot be written, as a full disk is; it
// counts the writes tried.
type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) {
	w.calls++
	return 0, errors.New("no space left on device")
}

// TestCaptionReportsWriteErrors: captions that cannot be written fail the
// command, where they used to be lost with exit status 0.
func TestCaptionReportsWriteErrors(t *testing.T) {
	assets := testassets.Dir(t, "captioning needs the encoder weights")
	resetFlags(t, "caption", "json")
	rootCmd.SetOut(&failingWriter{})
	rootCmd.SetErr(&bytes.Buffer{})
	rootCmd.SetArgs([]string{"caption", "--json=false", "--device", "cpu", "--assets", assets, "--model", shippedModel,
		filepath.Join(assets, "samples", "grace_hopper.bmp")})
	err := rootCmd.Execute()
	if want := "writing the captions: no space left on device"; err == nil || err.Error() != want {
		t.Errorf("caption into a full disk: %v, want %q", err, want)
	}
}
