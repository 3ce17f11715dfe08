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
)

// fit learns two classes apart: positives lean on feature 0, negatives on 1.
func TestFitSeparates(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var data []example
	for i := range 200 {
		x := make([]float32, 8)
		for k := range x {
			x[k] = rng.Float32()
		}
		y := float64(i % 2)
		x[1-i%2] += 2
		data = append(data, example{x: x, y: y, w: 1.0 / 200})
	}
	p := fit(data, 8)
	for i, e := range data {
		if got := p.Prob(e.x); (e.y == 1) != (got > 0.9) || (e.y == 0) != (got < 0.1) {
			t.Fatalf("example %d (class %g): probability %.3f", i, e.y, got)
		}
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
		w, h := hi.X-lo.X+1, hi.Y-lo.Y+1
		if lo.X == 0 || lo.Y == 0 || hi.X == b.Max.X-1 || hi.Y == b.Max.Y-1 {
			t.Fatalf("%v canvas: the stamp spans %v-%v, touching the edge", b, lo, hi)
		}
		if frac := float64(max(w*b.Dy(), h*b.Dx())) / float64(b.Dx()*b.Dy()); frac < 0.5 || frac > 0.96 || w < 2*h-4 || w > 2*h+4 {
			t.Fatalf("%v canvas: the stamp is %dx%d, want 2:1 filling 55-95%% of a side", b, w, h)
		}
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
	want := "animal_cow_0.jpg animal|animal_cow_1.jpg animal|animal_cow_2.jpg animal|animal_cow_3.jpg animal|" +
		"object_pear_0.jpg object|object_pear_1.jpg object|object_pear_2.jpg object|object_pear_3.jpg object"
	if strings.Join(got, "|") != want {
		t.Errorf("list.tsv:\n%s\nwant %s", list, want)
	}
}

// frame puts the first n train photos on backdrops as kind "photo", in the
// split file's order.
func TestFrameListsPhotos(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.jpg", "a.jpg", "c.jpg"} {
		if err := writeJPEG(filepath.Join(dir, "images", name), image.NewRGBA(image.Rect(0, 0, 224, 224))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Flickr_8k.trainImages.txt"), []byte("b.jpg\na.jpg\nc.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	n, err := frame(dir, 2, out, &list)
	if err != nil || n != 2 || list.String() != "photo_b.jpg\tphoto\tb.jpg\nphoto_a.jpg\tphoto\ta.jpg\n" {
		t.Fatalf("frame: %d, %v, list %q", n, err, list.String())
	}
	for _, f := range []string{"photo_b.jpg", "photo_a.jpg"} {
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
