// Package attnmap draws a caption's attention maps as Show, Attend and Tell's
// Figure 2 does (Xu et al. 2015): one panel per word, the photo lit where the
// decoder looked when it chose the word and dimmed elsewhere, the word above.
package attnmap

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Layout sizes, in pixels.
const (
	PanelHeight = 224 // the photo's height in a panel: the encoder's input size
	labelHeight = 34  // the band above each photo that holds the word
	gap         = 6   // between panels
	fontSize    = 20
	// floor is the brightness left where a word's weight is 0: enough to see
	// the photo, little enough that the attended regions stand out.
	floor = 0.2
)

// Strip returns one panel per word side by side. Each panel is the photo,
// scaled to PanelHeight high at its own aspect ratio, with its brightness
// scaled by the word's weights: weights[i] is word i's (grid*grid) row-major
// weights over the photo's regions (the encoder sees the whole photo squashed
// to a square, so the grid spans the whole photo), upsampled bilinearly and
// divided by the word's largest weight, so every panel shows where its word
// looked most at full brightness.
func Strip(photo image.Image, words []string, weights [][]float32, grid int) (*image.RGBA, error) {
	if len(words) == 0 {
		return nil, fmt.Errorf("attnmap: no words to draw")
	}
	if len(weights) != len(words) {
		return nil, fmt.Errorf("attnmap: %d words but %d rows of attention weights; give one row per word", len(words), len(weights))
	}
	for i, w := range weights {
		if len(w) != grid*grid {
			return nil, fmt.Errorf("attnmap: word %d (%q) has %d attention weights, want %d for a %dx%d grid", i, words[i], len(w), grid*grid, grid, grid)
		}
	}
	b := photo.Bounds()
	if b.Dx() == 0 || b.Dy() == 0 {
		return nil, fmt.Errorf("attnmap: the photo is empty (%dx%d)", b.Dx(), b.Dy())
	}
	pw := max(1, int(math.Round(float64(PanelHeight)*float64(b.Dx())/float64(b.Dy()))))
	scaled := image.NewRGBA(image.Rect(0, 0, pw, PanelHeight))
	xdraw.CatmullRom.Scale(scaled, scaled.Bounds(), photo, b, draw.Src, nil)

	face, err := labelFace()
	if err != nil {
		return nil, err
	}
	n := len(words)
	out := image.NewRGBA(image.Rect(0, 0, n*pw+(n-1)*gap, labelHeight+PanelHeight))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	for i, word := range words {
		x0 := i * (pw + gap)
		light(out, scaled, image.Pt(x0, labelHeight), upsample(weights[i], grid, pw, PanelHeight))
		label(out, face, word, x0, pw)
	}
	return out, nil
}

// light draws src at dst's point at with each pixel's colour scaled by
// floor + (1-floor)*bright[pixel].
func light(dst, src *image.RGBA, at image.Point, bright []float32) {
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := floor + (1-floor)*bright[y*w+x]
			c := src.RGBAAt(x, y)
			dst.SetRGBA(at.X+x, at.Y+y, color.RGBA{scale8(c.R, k), scale8(c.G, k), scale8(c.B, k), 255})
		}
	}
}

func scale8(v uint8, k float32) uint8 { return uint8(float32(v)*k + 0.5) }

// upsample returns the (h, w) bilinear upsampling of weights (grid, grid)
// divided by their largest value, in [0, 1]: cell centres sit at (i+0.5)/grid
// of each side, and pixels beyond the outer centres take the edge's values.
func upsample(weights []float32, grid, w, h int) []float32 {
	var top float32
	for _, v := range weights {
		top = max(top, v)
	}
	if top <= 0 {
		top = 1
	}
	out := make([]float32, w*h)
	for y := 0; y < h; y++ {
		y0, y1, fy := cell(y, h, grid)
		for x := 0; x < w; x++ {
			x0, x1, fx := cell(x, w, grid)
			a := weights[y0*grid+x0]*(1-fx) + weights[y0*grid+x1]*fx
			b := weights[y1*grid+x0]*(1-fx) + weights[y1*grid+x1]*fx
			out[y*w+x] = (a*(1-fy) + b*fy) / top
		}
	}
	return out
}

// cell maps pixel p of n to the grid cells i0, i1 on either side of its centre
// and its fraction of the way from i0 to i1.
func cell(p, n, grid int) (i0, i1 int, f float32) {
	g := (float64(p)+0.5)*float64(grid)/float64(n) - 0.5
	g = min(max(g, 0), float64(grid-1))
	i0 = int(g)
	i1 = min(i0+1, grid-1)
	return i0, i1, float32(g - float64(i0))
}

// label writes word centred over the panel at x0 (width w), in the band above
// the photo; a word wider than the panel is cut at its edges.
func label(dst *image.RGBA, face font.Face, word string, x0, w int) {
	panel := dst.SubImage(image.Rect(x0, 0, x0+w, labelHeight)).(*image.RGBA)
	d := font.Drawer{Dst: panel, Src: image.Black, Face: face}
	adv := d.MeasureString(word).Round()
	m := face.Metrics()
	baseline := (labelHeight + m.Ascent.Round() - m.Descent.Round()) / 2
	d.Dot = fixed.P(x0+(w-adv)/2, baseline)
	d.DrawString(word)
}

// goFont is the Go font (golang.org/x/image/font/gofont), parsed once; each
// Strip makes its own face of it, as a face is not safe for concurrent use.
var goFont = sync.OnceValues(func() (*opentype.Font, error) { return opentype.Parse(goregular.TTF) })

func labelFace() (font.Face, error) {
	f, err := goFont()
	if err != nil {
		return nil, fmt.Errorf("attnmap: the built-in font: %w", err)
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: fontSize, DPI: 72, Hinting: font.HintingFull})
}
