package attnmap

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// grey is a uniform photo, so a panel's brightness is its weights alone.
func grey(w, h int, v uint8) image.Image {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = v
	}
	return g
}

// peaked is a (grid*grid) row of weights with most of the mass in cell (r, c)
// and a little spread over the others, summing to 1.
func peaked(grid, r, c int) []float32 {
	w := make([]float32, grid*grid)
	for i := range w {
		w[i] = 0.2 / float32(grid*grid-1)
	}
	w[r*grid+c] = 0.8
	return w
}

// TestStripBrightestWhereWeightIsLargest: on a uniform photo, each panel's
// brightest pixel lies in the grid cell of its word's largest weight, for a
// wide photo too (the grid spans the whole photo), and zero weight leaves
// floor of the photo's brightness.
func TestStripBrightestWhereWeightIsLargest(t *testing.T) {
	const grid = 7
	src := grey(448, 224, 200) // 2:1
	cells := [][2]int{{2, 5}, {6, 0}, {0, 6}}
	weights := make([][]float32, len(cells))
	for i, rc := range cells {
		weights[i] = peaked(grid, rc[0], rc[1])
	}
	out, err := Strip(src, []string{"a", "dog", "runs"}, weights, grid)
	if err != nil {
		t.Fatal(err)
	}
	pw := 448 // the photo at PanelHeight high keeps its 2:1 aspect
	if want := image.Rect(0, 0, 3*pw+2*gap, labelHeight+PanelHeight); out.Bounds() != want {
		t.Fatalf("strip is %v, want %v", out.Bounds(), want)
	}
	for i, rc := range cells {
		x0 := i * (pw + gap)
		bx, by, best := -1, -1, -1
		for y := 0; y < PanelHeight; y++ {
			for x := 0; x < pw; x++ {
				if v := int(out.RGBAAt(x0+x, labelHeight+y).R); v > best {
					bx, by, best = x, y, v
				}
			}
		}
		r, c := by*grid/PanelHeight, bx*grid/pw
		// The cell's centre falls between pixels, so its neighbours come close to 200.
		if r != rc[0] || c != rc[1] || best < 190 {
			t.Errorf("word %d: brightest pixel (%d, %d) = %d is in cell (%d, %d), want cell (%d, %d) near 200", i, bx, by, best, r, c, rc[0], rc[1])
		}
	}

	// One cell only: the far corner has weight 0, so floor brightness
	// (0.2 of 203 is 40.6, rounded to 41). A word with no weight at all
	// (every region 0) is at floor brightness everywhere.
	one := make([]float32, grid*grid)
	one[0] = 1
	out, err = Strip(grey(224, 224, 203), []string{"x", "none"}, [][]float32{one, make([]float32, grid*grid)}, grid)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.RGBAAt(223, labelHeight+223).G; got != 41 {
		t.Errorf("zero-weight corner is %d, want 41 (floor of 203)", got)
	}
	if got := out.RGBAAt(0, labelHeight).G; got != 203 {
		t.Errorf("the attended corner is %d, want the photo's 203", got)
	}
	for _, p := range []image.Point{{0, 0}, {111, 111}, {223, 223}} {
		if got := out.RGBAAt(224+gap+p.X, labelHeight+p.Y).G; got != 41 {
			t.Errorf("all-zero weights: pixel %v is %d, want 41 (floor of 203)", p, got)
		}
	}
}

// TestUpsampleIsBilinear: cell centres sit at (i+0.5)/grid of each side,
// pixels between them are interpolated along x and y, and pixels beyond the
// outer centres take the edge's values. A 2x2 grid over 4x4 pixels puts the
// centres between pixels 0 and 1 and between 2 and 3, so pixels 1 and 2 lie a
// quarter and three quarters of the way.
func TestUpsampleIsBilinear(t *testing.T) {
	got := upsample([]float32{0, 1, 2, 3}, 2, 4, 4) // x adds 1, y adds 2; 3 the largest
	at := []float32{0, 0.25, 0.75, 1}
	for y := range 4 {
		for x := range 4 {
			if want := (at[x] + 2*at[y]) / 3; math.Abs(float64(got[y*4+x]-want)) > 1e-6 {
				t.Errorf("pixel (%d, %d) = %g, want %g", x, y, got[y*4+x], want)
			}
		}
	}
}

// TestPanelKeepsAspect: a panel is the photo at PanelHeight high, its width
// rounded, and one pixel wide at least.
func TestPanelKeepsAspect(t *testing.T) {
	for _, tc := range []struct{ w, h, panel int }{{640, 480, 299}, {1, 1000, 1}} {
		out, err := Strip(grey(tc.w, tc.h, 9), []string{"a"}, [][]float32{peaked(7, 0, 0)}, 7)
		if err != nil {
			t.Fatal(err)
		}
		if want := image.Rect(0, 0, tc.panel, labelHeight+PanelHeight); out.Bounds() != want {
			t.Errorf("%dx%d photo: strip %v, want %v", tc.w, tc.h, out.Bounds(), want)
		}
	}
}

// TestStripWritesEachWord: the band above each panel holds dark text pixels,
// centred on its panel, and nothing but white beyond the words.
func TestStripWritesEachWord(t *testing.T) {
	words := []string{"a", "climber"}
	w := peaked(7, 3, 3)
	out, err := Strip(grey(300, 224, 128), words, [][]float32{w, w}, 7)
	if err != nil {
		t.Fatal(err)
	}
	pw := 300
	for i, word := range words {
		x0 := i * (pw + gap)
		lo, hi, top, bottom, dark := pw, -1, labelHeight, -1, 0
		for y := 0; y < labelHeight; y++ {
			for x := 0; x < pw; x++ {
				if out.RGBAAt(x0+x, y).R < 128 {
					dark++
					lo, hi = min(lo, x), max(hi, x)
					top, bottom = min(top, y), max(bottom, y)
				}
			}
		}
		if dark == 0 {
			t.Fatalf("no text above word %d (%q)", i, word)
		}
		if mid := (lo + hi) / 2; mid < pw/2-8 || mid > pw/2+8 {
			t.Errorf("word %d (%q) spans x %d..%d of %d: not centred", i, word, lo, hi, pw)
		}
		if mid := (top + bottom) / 2; mid < labelHeight/2-2 || mid > labelHeight/2+2 {
			t.Errorf("word %d (%q) spans rows %d..%d of the %d-pixel band: not centred", i, word, top, bottom, labelHeight)
		}
		if i == 1 && hi-lo < 40 {
			t.Errorf("%q is %d pixels wide: too small to read", word, hi-lo)
		}
	}
	// The gap between the panels is white from top to bottom.
	for y := 0; y < labelHeight+PanelHeight; y++ {
		for x := pw; x < pw+gap; x++ {
			if c := out.RGBAAt(x, y); c != (color.RGBA{255, 255, 255, 255}) {
				t.Fatalf("gap pixel (%d, %d) is %v, want white", x, y, c)
			}
		}
	}
}

func TestStripErrors(t *testing.T) {
	w := peaked(7, 0, 0)
	for _, tc := range []struct {
		words   []string
		weights [][]float32
		photo   image.Image
		want    string
	}{
		{nil, nil, grey(10, 10, 1), "attnmap: no words to draw"},
		{[]string{"a", "b"}, [][]float32{w}, grey(10, 10, 1), "attnmap: 2 words but 1 rows of attention weights; give one row per word"},
		{[]string{"a"}, [][]float32{w[:48]}, grey(10, 10, 1), `attnmap: word 0 ("a") has 48 attention weights, want 49 for a 7x7 grid`},
		{[]string{"a"}, [][]float32{append(w, 0)}, grey(10, 10, 1), `attnmap: word 0 ("a") has 50 attention weights, want 49 for a 7x7 grid`},
		{[]string{"a"}, [][]float32{w}, image.NewRGBA(image.Rect(0, 0, 0, 5)), "attnmap: the photo is empty (0x5)"},
		{[]string{"a"}, [][]float32{w}, image.NewRGBA(image.Rect(0, 0, 5, 0)), "attnmap: the photo is empty (5x0)"},
	} {
		if _, err := Strip(tc.photo, tc.words, tc.weights, 7); err == nil || err.Error() != tc.want {
			t.Errorf("got error %v, want %q", err, tc.want)
		}
	}
}

// TestStripDrawsASubImagesOwnRegion: a photo whose bounds do not start at 0,0
// (a SubImage, a crop) is drawn from those bounds: the right half of a photo
// black on the left and 200 on the right is 200 throughout, at the full
// brightness of uniform weights.
func TestStripDrawsASubImagesOwnRegion(t *testing.T) {
	photo := image.NewGray(image.Rect(0, 0, 448, 224))
	for y := range 224 {
		for x := 224; x < 448; x++ {
			photo.SetGray(x, y, color.Gray{200})
		}
	}
	right := photo.SubImage(image.Rect(224, 0, 448, 224))
	uniform := make([]float32, 49)
	for i := range uniform {
		uniform[i] = 1.0 / 49
	}
	out, err := Strip(right, []string{"wall"}, [][]float32{uniform}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := image.Rect(0, 0, 224, labelHeight+PanelHeight); out.Bounds() != want {
		t.Fatalf("strip is %v, want %v", out.Bounds(), want)
	}
	for _, p := range []image.Point{{0, 0}, {111, 111}, {223, 223}} {
		if got := out.RGBAAt(p.X, labelHeight+p.Y).G; got != 200 {
			t.Errorf("panel pixel %v is %d, want the right half's 200", p, got)
		}
	}
}

// TestStripIsOpaque: a transparent photo (a PNG's alpha) still gives an
// opaque strip, black where the photo has no colour: a strip that kept the
// alpha would show a viewer's own background through its panels.
func TestStripIsOpaque(t *testing.T) {
	out, err := Strip(image.NewRGBA(image.Rect(0, 0, 10, 10)), []string{"a"}, [][]float32{peaked(7, 3, 3)}, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []image.Point{{0, 0}, {111, 111}, {223, 223}} {
		if got := out.RGBAAt(p.X, labelHeight+p.Y); got != (color.RGBA{0, 0, 0, 255}) {
			t.Errorf("panel pixel %v of a transparent photo is %v, want opaque black", p, got)
		}
	}
}
