package train

import (
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

// curvesHistory is 7 epochs of a run whose losses span odd values (the old
// charts put ticks at 4.668, 4.221, ...).
func curvesHistory() []EpochStats {
	var hist []EpochStats
	for e := 1; e <= 7; e++ {
		f := float64(e)
		hist = append(hist, EpochStats{Epoch: e, LR: 0.01, TrainLoss: 4.7913 - 0.213*f, DevLoss: 4.6021 - 0.151*f,
			BLEU: [4]float64{0.5117 + 0.013*f, 0.3 + 0.011*f, 0.2 + 0.0093*f, 0.1011 + 0.0061*f}, TokensPerSec: 9000, Seconds: 30})
	}
	return hist
}

func TestCurvesFiles(t *testing.T) {
	out := t.TempDir()
	hist := curvesHistory()
	if err := writeCurves(out, hist, false); err != nil {
		t.Fatal(err)
	}

	csv, err := os.ReadFile(filepath.Join(out, CurvesCSV))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if len(lines) != len(hist)+1 || lines[0] != "epoch,lr,train_loss,dev_loss,bleu1,bleu2,bleu3,bleu4,tokens_per_s,seconds,train_reward" ||
		lines[1] != "1,0.01,4.5783,4.4511,0.5247,0.311,0.2093,0.1072,9000,30," {
		t.Errorf("curves.csv:\n%s", csv)
	}

	f, err := os.Open(filepath.Join(out, CurvesPNG))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The BLEU-4 line and points are drawn in its colour.
	red := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r>>8 == 214 && g>>8 == 39 && bl>>8 == 40 {
				red++
			}
		}
	}
	if b.Dx() != 900 || b.Dy() != 700 || red < 100 {
		t.Errorf("curves.png is %dx%d with %d BLEU-4 pixels; want 900x700 with a drawn line", b.Dx(), b.Dy(), red)
	}

	texts := svgTexts(t, filepath.Join(out, CurvesSVG))
	for _, want := range []string{"cross-entropy loss per token", "dev BLEU", "epoch", "loss", "BLEU", "train", "dev", "BLEU-1", "BLEU-4"} {
		if !slices.Contains(texts, want) {
			t.Errorf("curves.svg has no text %q; its texts: %q", want, texts)
		}
	}
	// Every number on the charts is a tick label of a nice step.
	numbers := 0
	for _, s := range texts {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		numbers++
		if m := v * 1000; math.Abs(m-math.Round(m)) > 1e-9 {
			t.Errorf("tick label %s has more than 3 decimals", s)
		}
	}
	if numbers < 8 {
		t.Errorf("curves.svg has %d tick labels: %q", numbers, texts)
	}
}

// svgTexts parses an SVG file as XML and returns the content of its text elements.
func svgTexts(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("curves.svg is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "svg" && tok.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("root element in namespace %q", tok.Name.Space)
			}
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, strings.TrimSpace(string(tok)))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return texts
}

// TestTicksAreNice: labelled ticks fall on multiples of a step of 1, 2, 2.5, 3,
// 4 or 5 times a power of ten, are labelled with their exact value, and epochs
// are whole.
func TestTicksAreNice(t *testing.T) {
	for _, r := range [][2]float64{{4.221, 4.668}, {4.45, 4.5}, {0.1011, 0.6}, {2.3, 4.6}, {0.0012, 0.0031}, {1, 12}, {0, 2}, {1, 150}} {
		majors := labelled(valueTicks(r[0], r[1]))
		if len(majors) < 2 {
			t.Errorf("range %v: %d labelled ticks", r, len(majors))
			continue
		}
		step := majors[1].Value - majors[0].Value
		mag := math.Pow10(int(math.Floor(math.Log10(step) + 1e-9)))
		mant := step / mag
		if !slices.ContainsFunc([]float64{1, 2, 2.5, 3, 4, 5}, func(q float64) bool { return math.Abs(mant-q) < 1e-9 }) {
			t.Errorf("range %v: step %g", r, step)
		}
		for i, tk := range majors {
			if k := tk.Value / step; math.Abs(k-math.Round(k)) > 1e-6 {
				t.Errorf("range %v: tick %g is not a multiple of the step %g", r, tk.Value, step)
			}
			if i > 0 && math.Abs(tk.Value-majors[i-1].Value-step) > 1e-9*step {
				t.Errorf("range %v: ticks %g, %g are not %g apart", r, majors[i-1].Value, tk.Value, step)
			}
			if v, err := strconv.ParseFloat(tk.Label, 64); err != nil || math.Abs(v-tk.Value) > 1e-9*step {
				t.Errorf("range %v: tick %g labelled %q", r, tk.Value, tk.Label)
			}
			if tk.Value < r[0]-1e-9 || tk.Value > r[1]+1e-9 {
				t.Errorf("range %v: tick %g outside it", r, tk.Value)
			}
		}
	}
	for _, c := range []struct {
		min, max float64
		want     []string
	}{
		{1, 12, []string{"2", "4", "6", "8", "10", "12"}},
		{0, 2, []string{"0", "1", "2"}},
		{1, 3, []string{"1", "2", "3"}},
		{1, 60, []string{"10", "20", "30", "40", "50", "60"}},
		{1, 150, []string{"25", "50", "75", "100", "125", "150"}},
	} {
		var got []string
		for _, tk := range labelled(epochTicks(c.min, c.max)) {
			got = append(got, tk.Label)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("epoch ticks over [%g, %g]: %q, want %q", c.min, c.max, got, c.want)
		}
	}
}

func labelled(ticks []plot.Tick) []plot.Tick {
	var out []plot.Tick
	for _, t := range ticks {
		if t.Label != "" {
			out = append(out, t)
		}
	}
	return out
}
