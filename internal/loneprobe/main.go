// Command loneprobe trains the lone-object probe that models/lone-object ships:
// a logistic regression on the encoder's pooled features that tells a photo of
// things alone (no person, no animal) from Flickr8k's photos of people and
// animals. models/lone-object/MODEL.md has the data, the commands and the
// scores.
//
//	go run ./internal/loneprobe composite --stamps DIR --exclude testdata/ood --flickr8k DIR --out DIR
//	go run ./internal/loneprobe train --composites FEATURES --list DIR/list.tsv \
//	    --flickr8k FEATURES [--dev FEATURES] [--ood FEATURES] --out models/lone-object/probe.json
//
// composite cuts Tux Paint's photographic stamps (Debian's
// tuxpaint-stamps-default, transparent PNGs) onto plain backdrops: each stamp
// four times, on white, light gray, dark gray and a random colour, at a random
// size and place. Objects (food, household things, instruments, vehicles,
// plants, ...) are the positives, animals negatives beside Flickr8k's training
// photos, so that neither a plain backdrop nor a cut-out look can stand for
// "no one there"; with --flickr8k, Flickr8k train photos framed on the same
// backdrops are negatives too (frame). Stamps whose photos are in
// testdata/ood are left out.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // readImage's stamps
	"io"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"

	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/pipeline"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loneprobe composite|train [flags] (see the package comment)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "composite":
		err = composite(os.Args[2:])
	case "train":
		err = train(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want composite or train", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loneprobe:", err)
		os.Exit(1)
	}
}

// Kinds of stamp, by the top folder under Tux Paint's stamps/. Folders not
// listed (symbols, letters, money, planets, cartoons) are no photos of things.
var kinds = map[string]string{
	"animals": "animal",
	"food":    "object", "household": "object", "hobbies": "object", "vehicles": "object", "sports": "object",
	"clothes": "object", "military": "object", "seasonal": "object", "plants": "object", "town": "object",
}

// skipped are sub-folders of object folders that hold drawings or signs, not photos.
var skipped = []string{"cartoon", "roadsigns", "flags", "houses"}

func composite(args []string) error {
	fl := flag.NewFlagSet("composite", flag.ExitOnError)
	stamps := fl.String("stamps", "/usr/share/tuxpaint/stamps", "Tux Paint's stamps folder")
	exclude := fl.String("exclude", "testdata/ood", "folder whose tuxpaint_NAME.jpg photos name the stamps to leave out")
	out := fl.String("out", "", "output folder: img/ and list.tsv")
	flickr := fl.String("flickr8k", "", "Flickr8k folder (images/, Flickr_8k.trainImages.txt): frame --framed of its train photos too")
	framed := fl.Int("framed", 1500, "how many Flickr8k train photos to frame on backdrops (and as many more small, half of them under- or overexposed)")
	fl.Parse(args)
	if *out == "" {
		return errors.New("composite: --out is required")
	}
	left, err := filepath.Glob(filepath.Join(*exclude, "tuxpaint_*.jpg"))
	if err != nil {
		return err
	}
	leftOut := map[string]bool{}
	for _, p := range left {
		leftOut[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "tuxpaint_"), ".jpg")] = true
	}
	if err := os.MkdirAll(filepath.Join(*out, "img"), 0o755); err != nil {
		return err
	}
	list, err := os.Create(filepath.Join(*out, "list.tsv"))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(1))
	aug := rand.New(rand.NewSource(3)) // the variants' own: the first four stay as they were
	n := 0
	err = filepath.WalkDir(*stamps, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".png") {
			return err
		}
		rel, _ := filepath.Rel(*stamps, p)
		kind := kinds[strings.Split(rel, string(filepath.Separator))[0]]
		base := strings.TrimSuffix(filepath.Base(p), ".png")
		if kind == "" || leftOut[base] || slices.ContainsFunc(skipped, func(s string) bool { return strings.Contains(rel, s) }) {
			return nil
		}
		src, err := readImage(p)
		if err != nil || src.Bounds().Dx() < 100 && src.Bounds().Dy() < 100 {
			return nil // a broken or thumbnail-sized stamp
		}
		imgs := map[string]image.Image{}
		for k := range 4 {
			imgs[fmt.Sprint(k)] = place(src, backdrop(rng, k), rng)
		}
		imgs["small"], imgs["turned"] = small(src, aug), turned(src, aug)
		for _, v := range []string{"0", "1", "2", "3", "small", "turned"} {
			name := fmt.Sprintf("%s_%s_%s.jpg", kind, base, v)
			if err := writeJPEG(filepath.Join(*out, "img", name), imgs[v]); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(list, "%s\t%s\t%s\n", name, kind, rel); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil && *flickr != "" {
		var m int
		m, err = frame(*flickr, *framed, *out, list)
		n += m
	}
	if cerr := list.Close(); err == nil {
		err = cerr // a list cut short would leave images unlabelled
	}
	fmt.Printf("composite: %d images in %s\n", n, *out)
	return err
}

// frame puts the first n of Flickr8k's train photos (in the split file's
// order), whole, on the plain backdrops the stamps get, as kind "photo": a
// photo with margins (a print, a screenshot, a letterboxed frame) still
// shows its people. Without them the probe took a margin for a backdrop: 70
// of 450 dev photos framed (in white, in gray, letterboxed in black) reached
// LoneAbove, "An object on a white background."; with them, 2. A third fill
// the canvas's width or height (letterboxed, pillarboxed).
func frame(dir string, n int, out string, list io.Writer) (int, error) {
	names, err := readLines(filepath.Join(dir, "Flickr_8k.trainImages.txt"))
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewSource(2)) // its own: the stamps' composites stay as they were
	for i, name := range names[:min(n, len(names))] {
		src, err := readImage(filepath.Join(dir, "images", name))
		if err != nil {
			return i, err
		}
		bg := backdrop(rng, i%4)
		img := place(src, bg, rng)
		if rng.Intn(3) == 0 {
			img = letterbox(src, bg, rng.Intn(2) == 0)
		}
		if err := framed(out, "photo_"+name, name, img, list); err != nil {
			return i, err
		}
	}
	// The next n, small anywhere on a backdrop, every other one under- or
	// overexposed (an overexposed portrait on white had been things alone).
	aug := rand.New(rand.NewSource(4))
	more := names[min(n, len(names)):min(2*n, len(names))]
	for i, name := range more {
		src, err := readImage(filepath.Join(dir, "images", name))
		if err != nil {
			return min(n, len(names)) + i, err
		}
		img, file := small(src, aug), "small_"+name
		if i%2 == 1 {
			img, file = exposed(img, aug), "exposed_"+name
		}
		if err := framed(out, file, name, img, list); err != nil {
			return min(n, len(names)) + i, err
		}
	}
	return min(n, len(names)) + len(more), nil
}

// framed writes a framed photo as file and lists it as kind "photo".
func framed(out, file, name string, img image.Image, list io.Writer) error {
	if err := writeJPEG(filepath.Join(out, "img", file), img); err != nil {
		return err
	}
	_, err := fmt.Fprintf(list, "%s\tphoto\t%s\n", file, name)
	return err
}

// letterbox draws src across the whole width of a 400x300 canvas of bg (wide)
// or the whole height of a 300x400 one, keeping its aspect ratio.
func letterbox(src image.Image, bg color.RGBA, wide bool) image.Image {
	W, H := 300, 400
	if wide {
		W, H = 400, 300
	}
	return onCanvas(src, bg, W, H, 1, func(room int) int { return room / 2 })
}

// backdrop is the k-th of a stamp's four backdrops: white, light gray, dark
// gray, a random colour.
func backdrop(rng *rand.Rand, k int) color.RGBA {
	switch k {
	case 0:
		return color.RGBA{255, 255, 255, 255}
	case 1:
		v := uint8(150 + rng.Intn(100))
		return color.RGBA{v, v, v - uint8(rng.Intn(10)), 255}
	case 2:
		v := uint8(rng.Intn(70))
		return color.RGBA{v, v, v + uint8(rng.Intn(20)), 255}
	}
	return color.RGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255}
}

// place draws src over bg on a landscape, portrait or square canvas, filling
// 55-95% of it, near the middle.
func place(src image.Image, bg color.RGBA, rng *rand.Rand) image.Image {
	W, H := shape(rng)
	return onCanvas(src, bg, W, H, 0.55+0.4*rng.Float64(), func(room int) int { return rng.Intn(room+1)/2 + room/4 })
}

// shape is a canvas's size: landscape, portrait or square.
func shape(rng *rand.Rand) (W, H int) {
	switch rng.Intn(3) {
	case 0:
		return 300, 400
	case 1:
		return 360, 360
	}
	return 400, 300
}

// small draws src anywhere on one of the backdrops, filling 6-45% of the
// canvas: a thing photographed from afar, or a photo shrunk onto a page.
// Without them the probe took two dogs 80 px wide on an 800 px page for a
// switch alone; from 12% only, a quarter of people 60 px wide on 800 for
// objects.
func small(src image.Image, rng *rand.Rand) image.Image {
	W, H := shape(rng)
	return onCanvas(src, backdrop(rng, rng.Intn(4)), W, H, 0.06+0.39*rng.Float64(), func(room int) int { return rng.Intn(room + 1) })
}

// turned draws src turned by 15-40 degrees either way, in the middle of one
// of the backdrops, filling 45-75% of it: a screwdriver lying aslant was a
// dog to the probe trained on upright stamps alone.
func turned(src image.Image, rng *rand.Rand) image.Image {
	W, H := shape(rng)
	dst := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(dst, dst.Bounds(), &image.Uniform{backdrop(rng, rng.Intn(4))}, image.Point{}, draw.Src)
	b := src.Bounds()
	fill := 0.45 + 0.3*rng.Float64()
	s := min(float64(W)*fill/float64(b.Dx()), float64(H)*fill/float64(b.Dy()))
	angle := (15 + 25*rng.Float64()) * math.Pi / 180
	if rng.Intn(2) == 0 {
		angle = -angle
	}
	sin, cos := math.Sincos(angle)
	// dst = centre + R·s·(p - src's centre)
	cx, cy := float64(W)/2, float64(H)/2
	sx, sy := float64(b.Min.X+b.Max.X)/2, float64(b.Min.Y+b.Max.Y)/2
	m := f64.Aff3{s * cos, -s * sin, cx - s*(cos*sx-sin*sy), s * sin, s * cos, cy - s*(sin*sx+cos*sy)}
	draw.CatmullRom.Transform(dst, m, src, b, draw.Over, nil)
	return dst
}

// exposed is img (an *image.RGBA) under- or overexposed, as a camera leaves it:
// every channel scaled by 0.15-0.5, or taken 60-90% of the way to white.
func exposed(img image.Image, rng *rand.Rand) image.Image {
	out := img.(*image.RGBA)
	dark := rng.Intn(2) == 0
	k := 0.15 + 0.35*rng.Float64()
	if !dark {
		k = 0.6 + 0.3*rng.Float64()
	}
	for i, v := range out.Pix {
		if i%4 == 3 {
			continue
		}
		if dark {
			out.Pix[i] = uint8(float64(v) * k)
		} else {
			out.Pix[i] = uint8(float64(v) + (255-float64(v))*k)
		}
	}
	return out
}

// onCanvas draws src over a W x H canvas of bg, scaled to fill the fraction
// fill of the canvas's width or height, whichever it meets first, keeping its
// aspect ratio; at places it along each axis given the room left there.
func onCanvas(src image.Image, bg color.RGBA, W, H int, fill float64, at func(room int) int) image.Image {
	dst := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(dst, dst.Bounds(), &image.Uniform{bg}, image.Point{}, draw.Src)
	b := src.Bounds()
	s := min(float64(W)*fill/float64(b.Dx()), float64(H)*fill/float64(b.Dy()))
	w, h := int(float64(b.Dx())*s), int(float64(b.Dy())*s)
	x0, y0 := at(W-w), at(H-h)
	draw.CatmullRom.Scale(dst, image.Rect(x0, y0, x0+w, y0+h), src, b, draw.Over, nil)
	return dst
}

// readImage decodes the PNG (a stamp, its alpha kept) or JPEG (a photo) at path.
func readImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	return img, err
}

func writeJPEG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 85}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// example is one training photo's pooled features and label (1: things alone).
type example struct {
	x []float32
	y float64
	w float64 // its weight in the loss: each class weighs half
}

func train(args []string) error {
	fl := flag.NewFlagSet("train", flag.ExitOnError)
	comps := fl.String("composites", "", "feature store of composite's images (captioner extract --images DIR/img --out ...)")
	listPath := fl.String("list", "", "composite's list.tsv")
	flickr := fl.String("flickr8k", "", "feature store of Flickr8k (captioner extract --split train): its train split are negatives")
	dev := fl.String("dev", "", "optional feature store holding Flickr8k's dev split, to report on")
	ood := fl.String("ood", "", "optional feature store of testdata/ood's photos, to report on")
	splits := fl.String("splits", "", "Flickr8k folder with Flickr_8k.trainImages.txt and Flickr_8k.devImages.txt")
	out := fl.String("out", "models/lone-object/probe.json", "where to write the probe")
	fl.Parse(args)
	if *comps == "" || *listPath == "" || *flickr == "" || *splits == "" {
		return errors.New("train: --composites, --list, --flickr8k and --splits are required")
	}
	cs, err := features.Open(*comps)
	if err != nil {
		return err
	}
	labels, err := readList(*listPath)
	if err != nil {
		return err
	}
	var data []example
	for _, name := range cs.Names() {
		kind, ok := labels[name]
		if !ok {
			continue
		}
		x, err := cs.Pooled(name)
		if err != nil {
			return err
		}
		data = append(data, example{x: x, y: b2f(kind == "object")})
	}
	flickrStore, err := features.Open(*flickr)
	if err != nil {
		return err
	}
	if a, b := cs.Manifest(), flickrStore.Manifest(); a.Encoder != b.Encoder || a.Dim != b.Dim {
		return fmt.Errorf("train: the composites' features are encoder %s's (%d values), Flickr8k's %s's (%d): extract both with the same captioner build and encoder weights", a.Encoder, a.Dim, b.Encoder, b.Dim)
	}
	trainNames, err := readLines(filepath.Join(*splits, "Flickr_8k.trainImages.txt"))
	if err != nil {
		return err
	}
	for _, name := range trainNames {
		x, err := flickrStore.Pooled(name)
		if err != nil {
			return err
		}
		data = append(data, example{x: x})
	}
	pos := balance(data)
	fmt.Printf("train: %d photos of things alone, %d of people or animals (%d Flickr8k)\n", pos, len(data)-pos, len(trainNames))
	p := fit(data, cs.Manifest().Dim)
	p.Encoder = cs.Manifest().Encoder
	if *dev != "" {
		if err := reportDev(p, *dev, filepath.Join(*splits, "Flickr_8k.devImages.txt")); err != nil {
			return err
		}
	}
	if *ood != "" {
		if err := reportOOD(p, *ood); err != nil {
			return err
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

// balance weighs data's examples so that each class weighs half of the loss,
// and returns the number of positives.
func balance(data []example) int {
	pos := 0
	for _, e := range data {
		pos += int(e.y)
	}
	for i := range data {
		data[i].w = 0.5 / float64(len(data)-pos)
		if data[i].y == 1 {
			data[i].w = 0.5 / float64(pos)
		}
	}
	return pos
}

// Training: full-batch Adam on the class-balanced logistic loss with an L2
// penalty, from zero: 1,280 weights and some 7,000 photos converge well within
// the steps (the loss changes in the fifth digit over the last 500).
const (
	steps = 1500
	rate  = 0.01
	l2    = 1e-3
)

// fit trains the probe on data, whose features have F values.
func fit(data []example, F int) pipeline.LoneProbe {
	w := make([]float64, F+1) // the weights, then the bias
	m, v := make([]float64, F+1), make([]float64, F+1)
	g := make([]float64, F+1)
	for step := 1; step <= steps; step++ {
		clear(g)
		loss := 0.0
		for _, e := range data {
			z := w[F]
			for i, x := range e.x {
				z += w[i] * float64(x)
			}
			p := sigmoid(z)
			loss -= e.w * (e.y*math.Log(p+1e-12) + (1-e.y)*math.Log(1-p+1e-12))
			d := e.w * (p - e.y)
			for i, x := range e.x {
				g[i] += d * float64(x)
			}
			g[F] += d
		}
		for i := range F {
			g[i] += l2 * w[i]
		}
		c1, c2 := 1-math.Pow(0.9, float64(step)), 1-math.Pow(0.999, float64(step))
		for i := range w {
			m[i] = 0.9*m[i] + 0.1*g[i]
			v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
			w[i] -= rate * (m[i] / c1) / (math.Sqrt(v[i]/c2) + 1e-8)
		}
		if step%250 == 0 {
			fmt.Printf("step %d: loss %.5f\n", step, loss)
		}
	}
	p := pipeline.LoneProbe{Weight: make([]float32, F), Bias: float32(w[F])}
	for i := range F {
		p.Weight[i] = float32(w[i])
	}
	return p
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// reportDev prints how many of Flickr8k's dev photos the probe takes for
// things alone: each one a caption it would replace.
func reportDev(p pipeline.LoneProbe, dir, listPath string) error {
	s, err := features.Open(dir)
	if err != nil {
		return err
	}
	names, err := readLines(listPath)
	if err != nil {
		return err
	}
	type scored struct {
		name string
		p    float64
	}
	var all []scored
	for _, n := range names {
		x, err := s.Pooled(n)
		if err != nil {
			return err
		}
		all = append(all, scored{n, p.Prob(x)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].p > all[j].p })
	above := 0
	for _, a := range all {
		if a.p >= pipeline.LoneAbove {
			above++
		}
	}
	fmt.Printf("dev: %d of %d photos at or above %.2f; the highest:", above, len(all), pipeline.LoneAbove)
	for _, a := range all[:3] {
		fmt.Printf(" %s %.3f", a.name, a.p)
	}
	fmt.Println()
	return nil
}

// reportOOD prints the probe's probability for each photo of a store.
func reportOOD(p pipeline.LoneProbe, dir string) error {
	s, err := features.Open(dir)
	if err != nil {
		return err
	}
	names := s.Names()
	sort.Strings(names)
	for _, n := range names {
		x, err := s.Pooled(n)
		if err != nil {
			return err
		}
		fmt.Printf("ood\t%.3f\t%s\n", p.Prob(x), n)
	}
	return nil
}

// readList reads composite's list.tsv: image name -> kind.
func readList(path string) (map[string]string, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s: %q is not NAME<TAB>KIND<TAB>STAMP", path, l)
		}
		out[f[0]] = f[1]
	}
	return out, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
