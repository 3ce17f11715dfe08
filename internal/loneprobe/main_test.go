package main

import (
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/features"
)

// fit learns two classes apart that only a bias separates (all features of
// the positives in (1, 2), of the negatives in (0, 1)), and weighs the classes
// alike: on overlapping classes, one in ten positive, it still finds most
// positives.
func TestFit(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	sample := func(pos bool, n int, draw func(pos bool) []float32) []example {
		var out []example
		for range n {
			out = append(out, example{x: draw(pos), y: b2f(pos)})
		}
		return out
	}
	apart := func(pos bool) []float32 {
		x := make([]float32, 8)
		for k := range x {
			x[k] = rng.Float32() + float32(b2f(pos))
		}
		return x
	}
	overlapping := func(pos bool) []float32 {
		x := make([]float32, 8)
		for k := range x {
			x[k] = rng.Float32()
		}
		x[0] = float32(rng.NormFloat64()*0.5 + b2f(pos))
		return x
	}
	data := append(sample(true, 100, apart), sample(false, 100, apart)...)
	balance(data)
	p := fit(data, 8)
	for i, e := range data {
		if got := p.Prob(e.x); (e.y == 1) != (got > 0.5) {
			t.Fatalf("separable example %d (class %g): probability %.3f", i, e.y, got)
		}
	}
	data = append(sample(true, 40, overlapping), sample(false, 360, overlapping)...)
	balance(data)
	p = fit(data, 8)
	found := 0
	for _, e := range data[:40] {
		if p.Prob(e.x) > 0.5 {
			found++
		}
	}
	if found < 28 { // balanced, the boundary is midway: about 84% of the positives
		t.Errorf("overlapping classes, one in ten positive: %d of 40 positives found, want at least 28", found)
	}
}

func TestReadList(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.tsv"), filepath.Join(dir, "bad.tsv")
	os.WriteFile(good, []byte("object_pear_0.jpg\tobject\tfood/fruit/pear.png\nphoto_a.jpg\tphoto\ta.jpg\n"), 0o644)
	os.WriteFile(bad, []byte("object_pear_0.jpg\tobject\n"), 0o644)
	if got, err := readList(good); err != nil || len(got) != 2 || got["object_pear_0.jpg"] != "object" || got["photo_a.jpg"] != "photo" {
		t.Errorf("readList: %v, %v", got, err)
	}
	if _, err := readList(bad); err == nil || err.Error() != bad+`: "object_pear_0.jpg\tobject" is not NAME<TAB>KIND<TAB>STAMP` {
		t.Errorf("readList of a short line: %v", err)
	}
}

// The four backdrops: white, a light gray, a dark gray (a little blue), any colour.
func TestBackdrop(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 20 {
		if c := backdrop(rng, 0); c != (color.RGBA{255, 255, 255, 255}) {
			t.Fatalf("backdrop 0: %v, want white", c)
		}
		if c := backdrop(rng, 1); c.R != c.G || c.R < 150 || c.R >= 250 || c.B > c.R || c.R-c.B >= 10 || c.A != 255 {
			t.Fatalf("backdrop 1: %v, want a light gray", c)
		}
		if c := backdrop(rng, 2); c.R != c.G || c.R >= 70 || c.B < c.R || c.B-c.R >= 20 || c.A != 255 {
			t.Fatalf("backdrop 2: %v, want a dark gray", c)
		}
	}
	seen := map[color.RGBA]bool{}
	for range 20 {
		seen[backdrop(rng, 3)] = true
	}
	if len(seen) < 15 {
		t.Errorf("backdrop 3: %d colours in 20, want them random", len(seen))
	}
}

// place puts the whole stamp on the canvas, the backdrop all around it.
func TestPlaceKeepsTheStamp(t *testing.T) {
	red := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for i := range red.Pix {
		red.Pix[i] = []uint8{255, 0, 0, 255}[i%4]
	}
	bg := color.RGBA{10, 200, 10, 255}
	rng := rand.New(rand.NewSource(1))
	shapes := map[image.Point]bool{}
	for range 20 {
		img := place(red, bg, rng)
		b := img.Bounds()
		lo, hi := b.Max, b.Min
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, _, _ := img.At(x, y).RGBA()
				if r>>8 > 200 && g>>8 < 60 {
					lo, hi = image.Pt(min(lo.X, x), min(lo.Y, y)), image.Pt(max(hi.X, x), max(hi.Y, y))
				}
			}
		}
		shapes[b.Size()] = true
		w, h := hi.X-lo.X+1, hi.Y-lo.Y+1
		if lo.X == 0 || lo.Y == 0 || hi.X == b.Max.X-1 || hi.Y == b.Max.Y-1 {
			t.Fatalf("%v canvas: the stamp spans %v-%v, touching the edge", b, lo, hi)
		}
		if frac := float64(max(w*b.Dy(), h*b.Dx())) / float64(b.Dx()*b.Dy()); frac < 0.54 || frac > 0.96 || w < 2*h-4 || w > 2*h+4 {
			t.Fatalf("%v canvas: the stamp is %dx%d, want 2:1 filling 55-95%% of a side", b, w, h)
		}
	}
	if len(shapes) != 3 || !shapes[image.Pt(400, 300)] || !shapes[image.Pt(300, 400)] || !shapes[image.Pt(360, 360)] {
		t.Errorf("canvases %v, want landscape, portrait and square", shapes)
	}
}

// composite writes four backdrops of each stamp of a kind it knows, and leaves
// out other folders, drawings and the stamps testdata/ood shows.
func TestCompositeKindsAndExclusions(t *testing.T) {
	stamps, ood, out := t.TempDir(), t.TempDir(), t.TempDir()
	stamp := image.NewNRGBA(image.Rect(0, 0, 120, 120)) // transparent but a square
	for y := 30; y < 90; y++ {
		for x := 30; x < 90; x++ {
			stamp.Set(x, y, color.NRGBA{200, 150, 0, 255})
		}
	}
	if err := os.MkdirAll(filepath.Join(stamps, "food/fruit"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Under 100 px each way a stamp is a thumbnail, left out; 100 one way will do.
	for name, size := range map[string]image.Point{"fig": image.Pt(99, 60), "banana": image.Pt(150, 60)} {
		f, err := os.Create(filepath.Join(stamps, "food/fruit", name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, image.NewNRGBA(image.Rectangle{Max: size}))
		f.Close()
	}
	for _, rel := range []string{"animals/mammals/cow.png", "food/fruit/lemon.png", "food/fruit/pear.png", "symbols/money/coin.png", "town/cartoon/house.png"} {
		path := filepath.Join(stamps, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, stamp); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := os.WriteFile(filepath.Join(ood, "tuxpaint_lemon.jpg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := composite([]string{"--stamps", stamps, "--exclude", ood, "--out", out}); err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(filepath.Join(out, "list.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Split(l, "\t")
		got = append(got, f[0]+" "+f[1])
		if _, err := os.Stat(filepath.Join(out, "img", f[0])); err != nil {
			t.Error(err)
		}
	}
	var want []string
	for _, stamp := range []string{"animal_cow", "object_banana", "object_pear"} {
		for _, v := range []string{"0", "1", "2", "3", "small", "turned"} {
			want = append(want, stamp+"_"+v+".jpg "+strings.Split(stamp, "_")[0])
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("list.tsv:\n%s\nwant %s", list, want)
	}
	// The small variant shows the stamp smaller than any of the four placed ones.
	stampShare := func(file string) float64 {
		img, err := readImage(filepath.Join(out, "img", file))
		if err != nil {
			t.Fatal(err)
		}
		n, b := 0, img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, g, bl, _ := img.At(x, y).RGBA(); r>>8 > 170 && r>>8 < 230 && g>>8 > 120 && g>>8 < 180 && bl>>8 < 40 {
					n++
				}
			}
		}
		return float64(n) / float64(b.Dx()*b.Dy())
	}
	for _, v := range []string{"0", "1", "2", "3"} {
		if placed, tiny := stampShare("object_pear_"+v+".jpg"), stampShare("object_pear_small.jpg"); tiny >= placed || tiny == 0 {
			t.Errorf("the pear covers %.3f of its small variant and %.3f of variant %s: want the small one smaller", tiny, placed, v)
		}
	}
}

// frame puts the first n train photos on backdrops as kind "photo", in the
// split file's order, and the next n small, every other one exposed.
func TestFrameListsPhotos(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.jpg", "a.jpg", "c.jpg", "d.jpg", "e.jpg"} {
		if err := writeJPEG(filepath.Join(dir, "images", name), image.NewRGBA(image.Rect(0, 0, 224, 224))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Flickr_8k.trainImages.txt"), []byte("b.jpg\na.jpg\nc.jpg\nd.jpg\ne.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	n, err := frame(dir, 2, out, &list)
	if err != nil || n != 4 || list.String() != "photo_b.jpg\tphoto\tb.jpg\nphoto_a.jpg\tphoto\ta.jpg\nsmall_c.jpg\tphoto\tc.jpg\nexposed_d.jpg\tphoto\td.jpg\n" {
		t.Fatalf("frame: %d, %v, list %q", n, err, list.String())
	}
	for _, f := range []string{"photo_b.jpg", "photo_a.jpg", "small_c.jpg", "exposed_d.jpg"} {
		if _, err := os.Stat(filepath.Join(out, "img", f)); err != nil {
			t.Error(err)
		}
	}
}

// letterbox spans the canvas's width (or height) and keeps the aspect ratio.
func TestLetterbox(t *testing.T) {
	red := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for i := range red.Pix {
		red.Pix[i] = []uint8{255, 0, 0, 255}[i%4]
	}
	bg := color.RGBA{0, 0, 0, 255}
	for _, tc := range []struct {
		wide       bool
		size, want image.Point // the canvas, the red part
	}{{true, image.Pt(400, 300), image.Pt(400, 200)}, {false, image.Pt(300, 400), image.Pt(300, 150)}} {
		img := letterbox(red, bg, tc.wide)
		reds := 0
		for y := range img.Bounds().Dy() {
			for x := range img.Bounds().Dx() {
				if r, _, _, _ := img.At(x, y).RGBA(); r>>8 > 128 {
					reds++
				}
			}
		}
		if img.Bounds().Size() != tc.size || reds < tc.want.X*tc.want.Y-2*tc.want.X || reds > tc.want.X*tc.want.Y+2*tc.want.X {
			t.Errorf("wide %v: a %v canvas with %d red pixels, want %v and about %d", tc.wide, img.Bounds().Size(), reds, tc.size, tc.want.X*tc.want.Y)
		}
	}
}

// train refuses features of two encoders, naming both.
func TestTrainRefusesMixedEncoders(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"enc-a", "enc-b"} {
		st, err := features.Create(filepath.Join(dir, id), features.Manifest{Encoder: id, Dim: 4})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	list := filepath.Join(dir, "list.tsv")
	os.WriteFile(list, nil, 0o644)
	err := train([]string{"--composites", filepath.Join(dir, "enc-a"), "--list", list, "--flickr8k", filepath.Join(dir, "enc-b"), "--splits", dir})
	if want := "train: the composites' features are encoder enc-a's (4 values), Flickr8k's enc-b's (4): extract both with the same captioner build and encoder weights"; err == nil || err.Error() != want {
		t.Errorf("train on two encoders' features: %v, want %q", err, want)
	}
}

// small puts the whole stamp inside the canvas at 6-45% of it; turned turns
// it 15-40 degrees; exposed darkens or brightens every channel alike.
func TestVariants(t *testing.T) {
	red := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for i := range red.Pix {
		red.Pix[i] = []uint8{255, 0, 0, 255}[i%4]
	}
	rng := rand.New(rand.NewSource(1))
	for range 20 {
		img := small(red, rng)
		b := img.Bounds()
		reds := 0
		for y := range b.Dy() {
			for x := range b.Dx() {
				if img.At(x, y) == (color.RGBA{255, 0, 0, 255}) { // the stamp, not a reddish backdrop
					reds++
				}
			}
		}
		side := min(b.Dx(), b.Dy())
		if lo, hi := int(0.05*float64(side))*int(0.05*float64(side)), int(0.46*float64(side))*int(0.46*float64(side)); reds < lo || reds > hi {
			t.Fatalf("small: %d red pixels on a %v canvas, want %d-%d", reds, b.Size(), lo, hi)
		}
	}
	// A thin bar, turned, spans more rows than it is thick.
	bar := image.NewRGBA(image.Rect(0, 0, 200, 10))
	for i := range bar.Pix {
		bar.Pix[i] = []uint8{255, 0, 0, 255}[i%4]
	}
	for range 10 {
		img := turned(bar, rng)
		rows := 0
		for y := range img.Bounds().Dy() {
			for x := range img.Bounds().Dx() {
				if img.At(x, y) == (color.RGBA{255, 0, 0, 255}) { // the stamp, not a reddish backdrop
					rows++
					break
				}
			}
		}
		if w := img.Bounds().Dx(); rows < w/8 {
			t.Fatalf("turned: the bar spans %d rows of a %v canvas, want it aslant", rows, img.Bounds().Size())
		}
	}
	for range 10 {
		gray := image.NewRGBA(image.Rect(0, 0, 2, 1))
		copy(gray.Pix, []uint8{100, 100, 100, 255, 200, 200, 200, 255})
		out := exposed(gray, rng).(*image.RGBA).Pix
		dark := out[0] < 100
		if dark && !(out[0] >= 15 && out[0] <= 50 && out[4] >= 30 && out[4] <= 100) || !dark && !(out[0] >= 193 && out[0] <= 240) || out[3] != 255 || out[0] != out[1] {
			t.Fatalf("exposed: %v from 100 and 200", out)
		}
	}
}
