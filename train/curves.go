package train

import (
	"bytes"
	"encoding/csv"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"path/filepath"
	"strconv"

	"github.com/captioner/captioner/internal/atomicfile"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Curve files inside the output folder.
const (
	CurvesCSV = "curves.csv"
	CurvesPNG = "curves.png"
)

// writeCurves writes the history as CSV and as a two-panel PNG plot (losses; dev
// BLEU-1..4), each atomically; the CSV's train_reward column is filled for runs
// that sampled captions (the cider objective) and empty otherwise.
func writeCurves(out string, hist []EpochStats, sampled bool) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"epoch", "lr", "train_loss", "dev_loss", "bleu1", "bleu2", "bleu3", "bleu4", "tokens_per_s", "seconds", "train_reward"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, h := range hist {
		reward := "" // cross-entropy epochs sample nothing
		if sampled {
			reward = f(h.TrainReward)
		}
		w.Write([]string{strconv.Itoa(h.Epoch), f(h.LR), f(h.TrainLoss), f(h.DevLoss),
			f(h.BLEU[0]), f(h.BLEU[1]), f(h.BLEU[2]), f(h.BLEU[3]), f(h.TokensPerSec), f(h.Seconds), reward})
	}
	w.Flush()
	if err := atomicfile.WriteFile(filepath.Join(out, CurvesCSV), buf.Bytes()); err != nil {
		return err
	}
	epochs := make([]float64, len(hist))
	series := make([][]float64, 6)
	for i, h := range hist {
		epochs[i] = float64(h.Epoch)
		series[0] = append(series[0], h.TrainLoss)
		series[1] = append(series[1], h.DevLoss)
		for k := 0; k < 4; k++ {
			series[2+k] = append(series[2+k], h.BLEU[k])
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, 900, 700))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	plotPanel(img, image.Rect(0, 0, 900, 350), "cross-entropy loss per token", epochs, series[:2], []string{"train", "dev"})
	plotPanel(img, image.Rect(0, 350, 900, 700), "dev BLEU", epochs, series[2:], []string{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"})
	buf.Reset()
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, CurvesPNG), buf.Bytes())
}

var palette = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

// plotPanel draws one line chart with axes, ticks, a title and a legend in r.
func plotPanel(img *image.RGBA, r image.Rectangle, title string, xs []float64, ys [][]float64, names []string) {
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{220, 220, 220, 255}
	plot := image.Rect(r.Min.X+70, r.Min.Y+30, r.Max.X-130, r.Max.Y-40)
	label(img, r.Min.X+70, r.Min.Y+20, title, black)
	if len(xs) == 0 {
		return
	}
	xmin, xmax := xs[0], xs[len(xs)-1]
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range ys {
		for _, v := range s {
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
	}
	pad := (ymax - ymin) * 0.08
	if pad == 0 {
		pad = math.Max(math.Abs(ymax)*0.1, 0.01)
	}
	ymin, ymax = ymin-pad, ymax+pad
	px := func(x float64) int { return plot.Min.X + int((x-xmin)/(xmax-xmin)*float64(plot.Dx())) }
	py := func(y float64) int { return plot.Max.Y - int((y-ymin)/(ymax-ymin)*float64(plot.Dy())) }
	// Grid and y ticks: 5 intervals.
	for i := 0; i <= 5; i++ {
		y := ymin + (ymax-ymin)*float64(i)/5
		yy := py(y)
		line(img, plot.Min.X, yy, plot.Max.X, yy, grey)
		label(img, r.Min.X+5, yy+4, strconv.FormatFloat(y, 'f', 3, 64), black)
	}
	// x ticks at integer epochs, at most ~10 labels.
	step := max(1, int(math.Ceil((xmax-xmin)/10)))
	for e := int(math.Ceil(xmin)); float64(e) <= xmax; e += step {
		xx := px(float64(e))
		line(img, xx, plot.Max.Y, xx, plot.Max.Y+5, black)
		label(img, xx-4, plot.Max.Y+18, strconv.Itoa(e), black)
	}
	label(img, plot.Min.X+plot.Dx()/2-15, plot.Max.Y+34, "epoch", black)
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, black)
	line(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y, black)
	for k, s := range ys {
		col := palette[k%len(palette)]
		for i := range s {
			x, y := px(xs[i]), py(s[i])
			fillRect(img, x-2, y-2, x+2, y+2, col)
			if i > 0 {
				line(img, px(xs[i-1]), py(s[i-1]), x, y, col)
			}
		}
		ly := plot.Min.Y + 10 + 18*k
		fillRect(img, plot.Max.X+15, ly-6, plot.Max.X+35, ly-2, col)
		label(img, plot.Max.X+42, ly, names[k], black)
	}
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1+1, y1+1), image.NewUniform(c), image.Point{}, draw.Src)
}

// line draws a 2-pixel-wide segment (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
