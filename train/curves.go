package train

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"

	"github.com/captioner/captioner/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Curve files inside the output folder.
const (
	CurvesCSV = "curves.csv"
	CurvesPNG = "curves.png"
	CurvesSVG = "curves.svg"
)

// writeCurves writes the history as CSV and as a two-panel chart (losses; dev
// BLEU-1..4) in PNG and SVG, each atomically; the CSV's train_reward column is
// filled for runs that sampled captions (the cider objective) and empty otherwise.
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
	charts, err := curvesCharts(hist)
	if err != nil {
		return err
	}
	// 900x700 pixels at 96 dpi, and an SVG of the same size (675x525 pt).
	width, height := vg.Length(900)*vg.Inch/96, vg.Length(700)*vg.Inch/96
	for _, c := range []struct {
		canvas vg.CanvasWriterTo
		file   string
	}{
		{vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))}, CurvesPNG},
		{vgsvg.New(width, height), CurvesSVG},
	} {
		drawCharts(c.canvas, charts)
		buf.Reset()
		if _, err := c.canvas.WriteTo(&buf); err != nil {
			return fmt.Errorf("train: %s: %w", c.file, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(out, c.file), buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// chart is one panel of the curves with its legend, which is drawn beside the
// plot rather than over the lines.
type chart struct {
	plot   *plot.Plot
	legend plot.Legend
}

// palette: matplotlib's first four colours, one per series in order.
var palette = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

// curvesCharts makes the two panels: the cross-entropy losses and dev BLEU-1..4
// against the epoch.
func curvesCharts(hist []EpochStats) ([]chart, error) {
	loss := make([][]float64, 2)
	bleu := make([][]float64, 4)
	epochs := make([]float64, len(hist))
	for i, h := range hist {
		epochs[i] = float64(h.Epoch)
		loss[0] = append(loss[0], h.TrainLoss)
		loss[1] = append(loss[1], h.DevLoss)
		for k := range bleu {
			bleu[k] = append(bleu[k], h.BLEU[k])
		}
	}
	lc, err := lineChart("cross-entropy loss per token", "loss", epochs, loss, []string{"train", "dev"})
	if err != nil {
		return nil, err
	}
	bc, err := lineChart("dev BLEU", "BLEU", epochs, bleu, []string{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"})
	if err != nil {
		return nil, err
	}
	return []chart{lc, bc}, nil
}

// lineChart plots series (one per name, each a value per epoch) as lines with
// points, with whole-epoch ticks on x and nice values on y.
func lineChart(title, ylabel string, epochs []float64, series [][]float64, names []string) (chart, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = plot.TickerFunc(epochTicks)
	p.Y.Tick.Marker = plot.TickerFunc(valueTicks)
	p.Add(plotter.NewGrid())
	c := chart{plot: p, legend: plot.NewLegend()}
	c.legend.Top, c.legend.Left = true, true
	for k, ys := range series {
		xys := make(plotter.XYs, len(ys))
		for i := range ys {
			xys[i] = plotter.XY{X: epochs[i], Y: ys[i]}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return chart{}, fmt.Errorf("train: curve %s: %w", names[k], err)
		}
		col := palette[k%len(palette)]
		l.Color, l.Width = col, vg.Points(1.5)
		pts.Color, pts.Shape = col, draw.CircleGlyph{}
		p.Add(l, pts)
		c.legend.Add(names[k], l, pts)
	}
	return c, nil
}

// legendWidth is the strip right of each plot that holds its legend.
const legendWidth = 72 // points

// drawCharts stacks the charts on the canvas, plots aligned, legends at their right.
func drawCharts(canvas vg.CanvasSizer, charts []chart) {
	dc := draw.New(canvas)
	dc.SetColor(color.White) // the SVG canvas starts transparent
	dc.Fill(dc.Rectangle.Path())
	rows := make([][]*plot.Plot, len(charts))
	for i, c := range charts {
		rows[i] = []*plot.Plot{c.plot}
	}
	tiles := draw.Tiles{Rows: len(charts), Cols: 1, PadTop: 8, PadBottom: 4, PadLeft: 4, PadRight: 4, PadY: 12}
	cells := plot.Align(rows, tiles, draw.Crop(dc, 0, -legendWidth, 0, 0))
	for i, c := range charts {
		cell := cells[i][0]
		c.plot.Draw(cell)
		strip := cell
		strip.Min.X, strip.Max.X = cell.Max.X+8, dc.Max.X
		strip.Max.Y -= c.plot.Title.TextStyle.Rectangle(c.plot.Title.Text).Max.Y + c.plot.Title.Padding
		c.legend.Draw(strip)
	}
}

// valueTicks and epochTicks label at most maxTicks multiples of a step of 1, 2, 2.5 or 5
// times a power of ten (epochs: whole steps only). Our own rather than plot's
// DefaultTicks, which for a value axis over [4.221, 4.668] labels 4.25, 4.45, 4.65
// and for epochs 1..150 labels 20, 80, 140 (TestTicksAreNice).
func valueTicks(min, max float64) []plot.Tick { return niceTicks(min, max, false) }

func epochTicks(min, max float64) []plot.Tick { return niceTicks(min, max, true) }

// maxTicks is the most labels an axis gets: six fit a 250-pixel panel.
const maxTicks = 6

// niceTicks labels the multiples in [from, to] of the smallest nice step that
// gives at most maxTicks of them, each with as many decimals as the step has.
func niceTicks(from, to float64, whole bool) []plot.Tick {
	p := math.Floor(math.Log10((to - from) / maxTicks))
	for ; ; p++ {
		for _, q := range []float64{1, 2, 2.5, 5} {
			step := q * math.Pow(10, p)
			if whole && (step < 1 || step != math.Trunc(step)) {
				continue
			}
			lo, hi := int(math.Ceil(from/step-1e-9)), int(math.Floor(to/step+1e-9))
			if hi-lo+1 > maxTicks {
				continue
			}
			decimals := max(0, int(-p))
			if q == 2.5 {
				decimals = max(0, int(1-p))
			}
			var ticks []plot.Tick
			for k := lo; k <= hi; k++ {
				v := float64(k) * step
				ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
			}
			return ticks
		}
	}
}
