// Package palette names a photo's colours as a caption says them: the backdrop
// it stands on, when that is plain, and the colours of what stands on it.
//
// It reads the encoder's input tensor, (S, S, 3) RGB in [-1, 1] as
// imgproc.ToTensor writes it, so that what it measures is what the encoder saw,
// and it summarises that in Len numbers (Measure), which travel beside the
// encoder's features from Encode to Decode.
package palette

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
)

// Names are the colour words, in the order of a Summary's shares: the basic
// colour terms (Berlin and Kay) that Flickr8k's captions use, gray for the
// silvers and greys alike.
var Names = [...]string{"black", "white", "gray", "brown", "red", "orange", "yellow", "green", "blue", "purple", "pink"}

// The indices in Names.
const (
	black = iota
	white
	gray
	brown
	red
	orange
	yellow
	green
	blue
	purple
	pink
)

// Len is the length of a Summary's numbers: the backdrop's plainness and its
// colour (r, g, b in [0, 1]); the share of the photo's pixels more than
// backdropTolerance from that colour, and the farthest any other pixel is from
// it (what Blank reads: of the sampled pixels, or of all where the samples of a
// plain photo find at most two apart); then each of Names' share of the subject.
const Len = shares + len(Names)

// Where a Summary's numbers are.
const (
	plainness = 0
	backdrop  = 1 // r, g, b
	apart     = 4
	nearest   = 5 // the farthest of the pixels within backdropTolerance
	shares    = 6
)

// Summary is what Measure finds in a photo, as Len numbers (see Len).
type Summary []float32

// plainAbove is how much of a photo's border must be within backdropTolerance
// of the border's median colour for the photo to stand on a plain backdrop. On
// the 108 photos of testdata/ood the product shots and cut-outs measure 0.54
// to 1 (a hammer on a blue cloth darker in a corner 0.56, a wrench on white
// 1) and the photos of scenes mostly under 0.4 (a goat on a hill 0.04; sky,
// snow or water fill more). Only a caption of things alone names the backdrop.
const plainAbove = 0.5

// backdropTolerance is how far, in the tensor's [-1, 1] units (15/255 of a
// channel), a border pixel may be from the border's median colour and count
// as backdrop: JPEG's noise and a soft vignette stay inside it.
const backdropTolerance = 0.12

// subjectAbove is how far a pixel must be from a plain backdrop's colour to
// belong to what stands on it rather than to the backdrop or its shadow.
const subjectAbove = 0.2

// Measure summarises the tensor t, (side, side, 3) in [-1, 1]: how plain its
// border is and its median colour, how much of the photo lies apart from that
// colour and how far the rest strays from it (Blank), and the share of each
// colour name among the subject's pixels: those that differ from a plain
// backdrop, or, where the backdrop is not plain, the centre quarter of the
// photo.
func Measure(t []float32, side int) Summary {
	if side < 8 || len(t) < side*side*3 {
		panic(fmt.Sprintf("palette: Measure of %d values as a %dx%dx3 tensor", len(t), side, side))
	}
	ring := max(2, side/32) // 7 pixels at 224
	// Every fourth pixel of every fourth row at 224: shares of colour are
	// statistics, and a sixteenth of the pixels take 0.15 ms an image on one
	// core of a Xeon (BenchmarkMeasure), which Pipeline.Encode spends while
	// the encoder runs: the server's throughput felt even 0.44 ms (every
	// other pixel), at 16 clients on 2 cores.
	step := max(1, side/56)
	first := (side - 1) % step / 2 // the grid centred, so that each side of the border weighs alike
	var border [3][]float32
	for y := first; y < side; y += step {
		for x := first; x < side; x += step {
			if x >= ring && x < side-ring && y >= ring && y < side-ring {
				continue
			}
			i := (y*side + x) * 3
			for c := range 3 {
				border[c] = append(border[c], t[i+c])
			}
		}
	}
	var bg [3]float32
	for c := range 3 {
		bg[c] = median(border[c])
	}
	// A backdrop in shades (a cloth, a lit wall) reaches further than
	// subjectAbove: its subject is what lies beyond nine tenths of the border
	// pixels of its colour (a subject that touches the border is of another
	// colour, and no shade of the backdrop), and on a coloured backdrop is not
	// of its colour (a blue cloth darker in a corner is still the cloth;
	// white, gray and black things do stand on white, gray and black).
	bgName := name(unit(bg))
	shaded := bgName != white && bgName != gray && bgName != black
	near := 0
	var spread []float32 // the distance from the backdrop's colour of each border pixel of its colour
	for i := range border[0] {
		px := [3]float32{border[0][i], border[1][i], border[2][i]}
		d := distance(px, bg)
		if d < backdropTolerance {
			near++
		}
		if name(unit(px)) == bgName {
			spread = append(spread, d)
		}
	}
	plain := float32(near) / float32(len(border[0]))
	beyond := float32(subjectAbove)
	if len(spread) > 0 {
		slices.Sort(spread)
		beyond = max(beyond, spread[len(spread)*9/10])
	}
	onBackdrop := plain >= plainAbove
	counts := make([]int, len(Names))
	total := 0
	for y := first; y < side; y += step {
		for x := first; x < side; x += step {
			i := (y*side + x) * 3
			px := [3]float32{t[i], t[i+1], t[i+2]}
			if onBackdrop && distance(px, bg) <= beyond || !onBackdrop && (x < side/4 || x >= side-side/4 || y < side/4 || y >= side-side/4) {
				continue
			}
			k := name(unit(px))
			if onBackdrop && shaded && k == bgName {
				continue
			}
			counts[k]++
			total++
		}
	}
	s := make(Summary, Len)
	s[plainness] = plain
	for c, v := range unit(bg) {
		s[backdrop+c] = float32(v)
	}
	away, read, within := apartFrom(t, side, first, step, bg)
	if away <= 2 && plain >= blankPlain {
		// Next to nothing apart among the samples of a plain photo: a blank
		// one, with an odd pixel or two the grid happened on, or a thing
		// thinner than the grid (a line 2 pixels wide, a dot 3 across). Blank
		// decides on every pixel.
		away, read, within = apartFrom(t, side, 0, 1, bg)
	}
	s[apart], s[nearest] = float32(away)/float32(read), within
	for k, n := range counts {
		if total > 0 {
			s[shares+k] = float32(n) / float32(total)
		}
	}
	return s
}

// apartFrom reads every step-th pixel of every step-th row of t from first
// and counts those more than backdropTolerance from bg (away) among the read
// ones, with the farthest from bg of the others (within).
func apartFrom(t []float32, side, first, step int, bg [3]float32) (away, read int, within float32) {
	for y := first; y < side; y += step {
		for x := first; x < side; x += step {
			i := (y*side + x) * 3
			if d := distance([3]float32{t[i], t[i+1], t[i+2]}, bg); d > backdropTolerance {
				away++
			} else {
				within = max(within, d)
			}
			read++
		}
	}
	return away, read, within
}

// Backdrop is the colour name of the plain backdrop the photo stands on, or
// false where its border is not plain.
func (s Summary) Backdrop() (string, bool) {
	if s[plainness] < plainAbove {
		return "", false
	}
	return Names[name([3]float64{float64(s[backdrop]), float64(s[backdrop+1]), float64(s[backdrop+2])})], true
}

// Blank is the colour name of a photo of one colour with nothing on it (a
// lens cap's black frame, an empty white page), and how sure that is: its
// border at least 99% plain, and at most 1 in 10,000 of its pixels (5 at
// 224) more than backdropTolerance (15/255) from the backdrop's colour, whatever its
// own colour (a navy box on light blue is something; so is a person in a
// photo underexposed to 7%, whose face reaches 18/255). sure falls from 1,
// every pixel the backdrop's colour exactly, towards 0 as the other pixels
// come near backdropTolerance (a figure 8/255 above black: 0.47).
func (s Summary) Blank() (colour string, sure float64, ok bool) {
	if s[plainness] < blankPlain || s[apart] > blankApart {
		return "", 0, false
	}
	colour, ok = s.Backdrop()
	return colour, float64(1 - s[nearest]/backdropTolerance), ok
}

// A blank photo's border is plain to 99%, and at most 1e-4 of its pixels are
// apart from the backdrop (specks of dust, JPEG's odd pixel; a dot 3 pixels
// across is 9 of 50,176 at 224, more).
const (
	blankPlain = 0.99
	blankApart = 1e-4
)

// soleAbove is the share of the subject's pixels one colour needs to name it
// alone ("a yellow lemon"); pairAbove what two need together, each at least
// secondAbove ("a black and white camera"). Below them a caption names no
// colour rather than a wrong one.
const (
	soleAbove   = 0.55
	pairAbove   = 0.7
	secondAbove = 0.2
)

// Colours is how a caption names the subject's colours: one colour, two
// joined by "and" ("red and white": a colour before black, black before
// white, as people say them), or "" where no colour or pair dominates.
func (s Summary) Colours() string {
	type share struct {
		name string
		f    float32
	}
	var ranked []share
	for k, n := range Names {
		ranked = append(ranked, share{n, s[shares+k]})
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].f > ranked[j].f })
	first, second := ranked[0], ranked[1]
	switch {
	case first.f >= soleAbove:
		return first.name
	case second.f >= secondAbove && first.f+second.f >= pairAbove:
		pair := []share{first, second}
		slices.SortStableFunc(pair, func(a, b share) int { return cmp.Compare(saidLater(a.name), saidLater(b.name)) })
		return pair[0].name + " and " + pair[1].name
	}
	return ""
}

// saidLater orders two colours as people join them: "red and white", "red and
// black", "black and white".
func saidLater(name string) int {
	switch name {
	case "white":
		return 2
	case "black", "gray":
		return 1
	}
	return 0
}

// name is the index in Names of the colour of px (r, g, b in [0, 1]), by hue,
// saturation and value: dark is black, unsaturated white or gray, dark orange
// brown (but gray below saturation 0.35), pale red pink, else the hue's colour.
func name(px [3]float64) int {
	r, g, b := px[0], px[1], px[2]
	v := max(r, g, b)
	c := v - min(r, g, b)
	s := 0.0
	if v > 0 {
		s = c / v
	}
	switch {
	case v < 0.22:
		return black
	case s < 0.18 || c < 0.08:
		if v > 0.78 {
			return white
		}
		return gray
	}
	h := hue(r, g, b, v, c)
	switch {
	case h >= 10 && h < 50 && v < 0.65 && s < 0.35:
		return gray // steel that reflects a warm room: a kettle is no brown
	case h >= 10 && h < 50 && v < 0.65:
		return brown
	case (h < 15 || h >= 335) && s < 0.45 && v > 0.7:
		return pink
	case h < 15 || h >= 335:
		return red
	case h < 36:
		return orange
	case h < 70:
		return yellow
	case h < 165:
		return green
	case h < 255:
		return blue
	case h < 290:
		return purple
	}
	return pink
}

// hue is the hue in degrees [0, 360) of r, g, b whose maximum is v and range c > 0.
func hue(r, g, b, v, c float64) float64 {
	var h float64
	switch v {
	case r:
		h = (g - b) / c // in (-1, 1]: red's side of the circle
	case g:
		h = (b-r)/c + 2
	default:
		h = (r-g)/c + 4
	}
	h *= 60
	if h < 0 {
		h += 360
	}
	return h
}

// unit maps a tensor pixel from [-1, 1] to [0, 1].
func unit(px [3]float32) [3]float64 {
	var u [3]float64
	for c, v := range px {
		u[c] = min(1, max(0, (float64(v)+1)/2))
	}
	return u
}

// distance is the largest difference of a and b over the three channels.
func distance(a, b [3]float32) float32 {
	return max(abs(a[0]-b[0]), abs(a[1]-b[1]), abs(a[2]-b[2]))
}

func abs(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// median is the middle value of v (v is reordered).
func median(v []float32) float32 {
	slices.Sort(v)
	return v[len(v)/2]
}
