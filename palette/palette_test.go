package palette

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// rgb is a colour in 0..255, as a photo's pixels are written.
type rgb [3]int

// tensor is a side x side photo, as imgproc.ToTensor writes it ([-1, 1]),
// painted by paint for each pixel.
func tensor(side int, paint func(x, y int) rgb) []float32 {
	t := make([]float32, side*side*3)
	for y := range side {
		for x := range side {
			c := paint(x, y)
			for k := range 3 {
				t[(y*side+x)*3+k] = float32(c[k])/127.5 - 1
			}
		}
	}
	return t
}

// square paints inner inside the centre half of the photo and outer around it.
func square(side int, outer, inner rgb) func(x, y int) rgb {
	return func(x, y int) rgb {
		if x >= side/4 && x < side*3/4 && y >= side/4 && y < side*3/4 {
			return inner
		}
		return outer
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		px   rgb
		want string
	}{
		{rgb{0, 0, 0}, "black"},
		{rgb{40, 20, 30}, "black"}, // dark whatever its hue: v < 0.22
		{rgb{255, 255, 255}, "white"},
		{rgb{235, 235, 228}, "white"},
		{rgb{205, 205, 205}, "white"}, // v 0.80: white down to 0.78
		{rgb{128, 128, 128}, "gray"},
		{rgb{180, 180, 190}, "gray"}, // silver
		{rgb{230, 20, 20}, "red"},
		{rgb{200, 20, 60}, "red"}, // crimson, hue 342: a red car's
		{rgb{240, 150, 160}, "pink"},
		{rgb{230, 60, 180}, "pink"}, // magenta
		{rgb{250, 140, 20}, "orange"},
		{rgb{240, 200, 40}, "yellow"}, // corn, hue 46
		{rgb{200, 220, 40}, "yellow"}, // hue 67: yellow up to 70
		{rgb{120, 70, 30}, "brown"},
		{rgb{140, 110, 30}, "brown"}, // hue 44, dark: brown up to hue 50
		{rgb{120, 110, 95}, "gray"},  // warm steel, saturation 0.21: no brown
		{rgb{40, 180, 60}, "green"},
		{rgb{30, 90, 220}, "blue"},
		{rgb{120, 40, 200}, "purple"},
	} {
		u := [3]float64{float64(tc.px[0]) / 255, float64(tc.px[1]) / 255, float64(tc.px[2]) / 255}
		if got := Names[name(u)]; got != tc.want {
			t.Errorf("name(%v) = %s, want %s", tc.px, got, tc.want)
		}
	}
}

// A square on a plain backdrop: the backdrop is named, and the square's colour,
// whatever the backdrop's.
func TestMeasurePlainBackdrop(t *testing.T) {
	for _, tc := range []struct {
		backdrop, subject rgb
		bg, colours       string
	}{
		{rgb{255, 255, 255}, rgb{230, 20, 20}, "white", "red"},
		{rgb{60, 62, 66}, rgb{240, 200, 40}, "gray", "yellow"},
		{rgb{10, 10, 12}, rgb{128, 128, 128}, "black", "gray"},
		{rgb{30, 90, 220}, rgb{255, 255, 255}, "blue", "white"},
	} {
		s := Measure(tensor(64, square(64, tc.backdrop, tc.subject)), 64)
		if len(s) != Len || s[0] != 1 {
			t.Fatalf("%v on %v: %d numbers, plainness %g; want %d and 1", tc.subject, tc.backdrop, len(s), s[0], Len)
		}
		if bg, ok := s.Backdrop(); !ok || bg != tc.bg {
			t.Errorf("%v on %v: backdrop %q, %v; want %s", tc.subject, tc.backdrop, bg, ok, tc.bg)
		}
		if got := s.Colours(); got != tc.colours {
			t.Errorf("%v on %v: colours %q, want %q", tc.subject, tc.backdrop, got, tc.colours)
		}
	}
}

// JPEG's noise on a backdrop stays backdrop, and out of the subject's colours.
func TestMeasureNoisyBackdrop(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	paint := square(64, rgb{}, rgb{30, 90, 220})
	noisy := func(x, y int) rgb {
		c := paint(x, y)
		if c == (rgb{30, 90, 220}) {
			return c
		}
		v := 235 + rng.Intn(21) - 10 // within 10 of 235
		return rgb{v, v, v}
	}
	s := Measure(tensor(64, noisy), 64)
	if bg, ok := s.Backdrop(); !ok || bg != "white" || s.Colours() != "blue" {
		t.Errorf("blue on noisy white: backdrop %q %v (plainness %g), colours %q; want white and blue", bg, ok, s[0], s.Colours())
	}
}

// Where the border is a scene (here stripes of four colours), no backdrop is
// named and the colours are the centre quarter's.
func TestMeasureScene(t *testing.T) {
	stripes := []rgb{{230, 20, 20}, {40, 180, 60}, {30, 90, 220}, {255, 255, 255}}
	s := Measure(tensor(64, func(x, y int) rgb {
		if x >= 16 && x < 48 && y >= 16 && y < 48 {
			return rgb{240, 200, 40}
		}
		return stripes[(x/4)%4]
	}), 64)
	if bg, ok := s.Backdrop(); ok || s[0] >= plainAbove {
		t.Errorf("striped border: backdrop %q (plainness %g), want none", bg, s[0])
	}
	if got := s.Colours(); got != "yellow" {
		t.Errorf("striped border, yellow centre: colours %q, want yellow", got)
	}
}

func TestColours(t *testing.T) {
	summaryOf := func(kv map[string]float32) Summary {
		s := make(Summary, Len)
		for k, v := range kv {
			s[shares+slices.Index(Names[:], k)] = v
		}
		return s
	}
	for _, tc := range []struct {
		shares map[string]float32
		want   string
	}{
		{map[string]float32{"yellow": 0.55, "gray": 0.45}, "yellow"},
		{map[string]float32{"white": 0.4, "red": 0.35, "blue": 0.25}, "red and white"}, // a colour before white
		{map[string]float32{"white": 0.5, "black": 0.3, "red": 0.2}, "black and white"},
		{map[string]float32{"black": 0.45, "orange": 0.3, "gray": 0.25}, "orange and black"},
		{map[string]float32{"red": 0.5, "blue": 0.19, "green": 0.31}, "red and green"},
		{map[string]float32{"red": 0.45, "white": 0.25, "blue": 0.15, "green": 0.15}, "red and white"},  // two make 0.7
		{map[string]float32{"black": 0.5, "white": 0.22, "red": 0.14, "blue": 0.14}, "black and white"}, // the second at 0.22
		{map[string]float32{"gray": 0.4, "red": 0.35, "blue": 0.25}, "red and gray"},                    // gray after a colour
		{map[string]float32{"red": 0.4, "blue": 0.25, "green": 0.2, "white": 0.15}, ""},                 // two make 0.65 < 0.7
		{map[string]float32{"red": 0.52, "blue": 0.18, "green": 0.18, "white": 0.12}, ""},               // the second under 0.2
		{map[string]float32{}, ""}, // no subject
	} {
		if got := summaryOf(tc.shares).Colours(); got != tc.want {
			t.Errorf("Colours of %v = %q, want %q", tc.shares, got, tc.want)
		}
	}
}

func TestMeasurePanicsOnABadTensor(t *testing.T) {
	for _, tc := range []struct {
		values, side int
		want         string
	}{
		{10, 64, "palette: Measure of 10 values as a 64x64x3 tensor"},
		{48, 4, "palette: Measure of 48 values as a 4x4x3 tensor"}, // too small to have a border and a centre
	} {
		func() {
			defer func() {
				if r := recover(); fmt.Sprint(r) != tc.want {
					t.Errorf("Measure(%d values, %d): panic %v, want %q", tc.values, tc.side, r, tc.want)
				}
			}()
			Measure(make([]float32, tc.values), tc.side)
		}()
	}
}

// A coloured backdrop in shades (a cloth darker towards a corner) is still
// plain, and its darker blue is no colour of the thing on it.
func TestMeasureShadedBackdrop(t *testing.T) {
	s := Measure(tensor(64, func(x, y int) rgb {
		switch {
		case x >= 16 && x < 48 && y >= 24 && y < 40:
			return rgb{120, 70, 30} // a brown handle
		case x+y < 40:
			return rgb{15, 50, 140} // the shaded corner
		}
		return rgb{30, 90, 220}
	}), 64)
	if bg, ok := s.Backdrop(); !ok || bg != "blue" || s.Colours() != "brown" {
		t.Errorf("brown on a shaded blue cloth: backdrop %q %v (plainness %g), colours %q; want blue and brown", bg, ok, s[0], s.Colours())
	}
}

// BenchmarkMeasure is the host's cost per image, beside the encoder's.
func BenchmarkMeasure(b *testing.B) {
	t := tensor(224, square(224, rgb{255, 255, 255}, rgb{230, 20, 20}))
	for b.Loop() {
		Measure(t, 224)
	}
}

// A subject that touches the border, at the encoder's 224 (where Measure
// samples every fourth pixel): a black band across the photo, a yellow box on
// it. The band's pixels on the border are no shade of the white backdrop, and
// do not raise how far the subject must be from it: the yellow is counted.
// It was not, and the caption said "black".
func TestMeasureSubjectTouchingTheBorder(t *testing.T) {
	s := Measure(tensor(224, func(x, y int) rgb {
		switch {
		case x >= 20 && x < 204 && y >= 84 && y < 140:
			return rgb{240, 200, 40}
		case y >= 80 && y < 144:
			return rgb{0, 0, 0}
		}
		return rgb{255, 255, 255}
	}), 224)
	if bg, ok := s.Backdrop(); !ok || bg != "white" || s.Colours() != "yellow" {
		t.Errorf("a yellow box on a black band across white: backdrop %q %v, colours %q (shares %v); want white and yellow", bg, ok, s.Colours(), s[shares:])
	}
}

// How plain a border is: a border whose pixels are mostly within 15/255 of
// its median colour is a backdrop from half of it (a hammer's cloth measured
// 0.56); a textured one, most of its pixels 20/255 away, is none.
func TestMeasurePlainness(t *testing.T) {
	red := rgb{230, 20, 20}
	for _, tc := range []struct {
		name   string
		border func(x, y int) rgb
		plain  bool
	}{
		{"55% plain", func(x, y int) rgb {
			if x+y < 58 { // the top left corner's 45% of the border, another colour
				return rgb{40, 180, 60}
			}
			return rgb{255, 255, 255}
		}, true},
		{"textured", func(x, y int) rgb {
			if (x+y)%5 < 2 {
				return rgb{200, 200, 200}
			}
			v := 180 + 40*((x+y)%2) // 20/255 each side of the median
			return rgb{v, v, v}
		}, false},
	} {
		s := Measure(tensor(64, func(x, y int) rgb {
			if x >= 16 && x < 48 && y >= 16 && y < 48 {
				return red
			}
			return tc.border(x, y)
		}), 64)
		if _, ok := s.Backdrop(); ok != tc.plain {
			t.Errorf("%s: plainness %g, backdrop %v; want %v", tc.name, s[plainness], ok, tc.plain)
		}
	}
}

// A subject near the backdrop's colour, 37/255 from it, is the subject: a
// blue-gray box on gray.
func TestMeasureSubjectNearTheBackdrop(t *testing.T) {
	s := Measure(tensor(64, square(64, rgb{128, 128, 128}, rgb{110, 125, 165})), 64)
	if got := s.Colours(); got != "blue" {
		t.Errorf("blue-gray on gray: colours %q (shares %v), want blue", got, s[shares:])
	}
}

// A white backdrop lit unevenly, light gray in a corner (55/255 from white,
// and still named white): the corner is backdrop, beyond which the subject
// lies, not a white part of the subject.
func TestMeasureUnevenWhiteBackdrop(t *testing.T) {
	s := Measure(tensor(64, func(x, y int) rgb {
		switch {
		case x >= 24 && x < 40 && y >= 24 && y < 40:
			return rgb{230, 20, 20}
		case x+y < 40:
			return rgb{200, 200, 200}
		}
		return rgb{255, 255, 255}
	}), 64)
	if bg, ok := s.Backdrop(); !ok || bg != "white" || s.Colours() != "red" {
		t.Errorf("red on white shaded gray in a corner: backdrop %q %v, colours %q (shares %v); want white and red", bg, ok, s.Colours(), s[shares:])
	}
}

// A photo of one colour, noisy as JPEG leaves it, is blank, the less surely
// the farther its pixels stray; a box on it (even of the backdrop's colour
// name), a spot 4 pixels across, or a scene inside a plain border, is not.
func TestBlank(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	noisy := func(x, y int) rgb {
		v := 20 + rng.Intn(11) - 5
		return rgb{v, v, v + 3}
	}
	for _, tc := range []struct {
		name  string
		paint func(x, y int) rgb
		want  string // "" for no blank
		sure  float64
	}{
		{"white", func(x, y int) rgb { return rgb{255, 255, 255} }, "white", 1},
		{"noisy black", noisy, "black", 1 - 5.0/127.5/backdropTolerance}, // at most 5/255 from the median
		{"a figure 8/255 above black", square(224, rgb{0, 0, 0}, rgb{8, 8, 8}), "black", 1 - 8.0/127.5/backdropTolerance},
		{"a figure 18/255 above black (an underexposed portrait)", square(224, rgb{0, 0, 0}, rgb{18, 18, 18}), "", 0},
		{"a box", square(224, rgb{255, 255, 255}, rgb{230, 20, 20}), "", 0},
		{"a navy box on light blue, both blue", square(224, rgb{150, 190, 240}, rgb{25, 38, 127}), "", 0},
		{"a line 2 pixels wide, between the samples", func(x, y int) rgb {
			if y == 102 || y == 103 {
				return rgb{0, 0, 0}
			}
			return rgb{255, 255, 255}
		}, "", 0},
		{"a few odd pixels, as JPEG leaves on a lens cap's frame", func(x, y int) rgb {
			if x == 49 && y == 61 || x == 170 && y == 133 { // the first on the sampling grid
				return rgb{40, 40, 40}
			}
			return rgb{0, 0, 0}
		}, "black", 1},
		{"a spot 3 pixels across, between the samples", func(x, y int) rgb {
			if x >= 102 && x < 105 && y >= 102 && y < 105 {
				return rgb{0, 0, 0}
			}
			return rgb{255, 255, 255}
		}, "", 0},
		{"a plain border, a scene inside", func(x, y int) rgb {
			if x < 8 || x >= 216 || y < 8 || y >= 216 {
				return rgb{255, 255, 255}
			}
			return rgb{(x * 7) % 256, (y * 5) % 256, 90}
		}, "", 0},
	} {
		colour, sure, ok := Measure(tensor(224, tc.paint), 224).Blank()
		if ok != (tc.want != "") || colour != tc.want || ok && (sure < tc.sure-0.01 || sure > tc.sure+0.01) {
			t.Errorf("%s: Blank() = %q, %.3f, %v; want %q, %.2f", tc.name, colour, sure, ok, tc.want, tc.sure)
		}
	}
}
