// Command mentionrate measures, on a photo set, how often captions name what
// the encoder recognises (issue 14's mention rate): of the photos whose top
// tag has probability >= --threshold, the share whose caption names the
// tag's noun or a synonym (tags.Mentions). With --set it also counts, over
// every photo, the captions that name the photo's expected noun and those that
// name a confident top tag that is not it: naming a tag is only right when the
// tag is.
//
// It reads the JSON of `captioner classify --top 1001 --json` (all 1001
// probabilities, so the tags' sums are exact) and of `captioner caption
// --json` for the same photos, and, with --set, the photo set's README
// table for the noun each photo should get. From the repository root:
//
//	captioner classify --top 1001 --json testdata/ood/*.jpg > classify.json
//	captioner caption --json testdata/ood/*.jpg > captions.json
//	go run ./tags/internal/mentionrate --classify classify.json --captions captions.json --set testdata/ood/README.md
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/captioner/captioner/tags"
)

func main() {
	classifyPath := flag.String("classify", "", "output of `captioner classify --top 1001 --json`")
	captionsPath := flag.String("captions", "", "output of `captioner caption --json` for the same images")
	setPath := flag.String("set", "", "photo set README with the expected noun of each photo (optional)")
	threshold := flag.Float64("threshold", 0.6, "a photo counts when its top tag's probability is at least this")
	flag.Parse()
	if *classifyPath == "" || *captionsPath == "" {
		fmt.Fprintln(os.Stderr, "mentionrate: --classify and --captions are required")
		os.Exit(2)
	}
	if err := run(os.Stdout, *classifyPath, *captionsPath, *setPath, float32(*threshold)); err != nil {
		fmt.Fprintln(os.Stderr, "mentionrate:", err)
		os.Exit(1)
	}
}

// classified is one element of `captioner classify --json`.
type classified struct {
	Image  string `json:"image"`
	Labels []struct {
		Index int     `json:"index"`
		Prob  float32 `json:"prob"`
	} `json:"labels"`
}

// captioned is one element of `captioner caption --json`.
type captioned struct {
	Image   string `json:"image"`
	Caption string `json:"caption"`
}

func run(w io.Writer, classifyPath, captionsPath, setPath string, threshold float32) error {
	var cls []classified
	if err := readJSON(classifyPath, &cls); err != nil {
		return err
	}
	var caps []captioned
	if err := readJSON(captionsPath, &caps); err != nil {
		return err
	}
	captionOf := map[string]string{}
	for _, c := range caps {
		captionOf[c.Image] = c.Caption
	}
	expected := map[string]string{}
	if setPath != "" {
		photos, err := readSet(setPath)
		if err != nil {
			return err
		}
		for _, p := range photos {
			expected[p.File] = p.Noun
		}
	}

	var photos []tags.Captioned
	right, sure := 0, 0
	// Against the set's expected nouns, over every photo: captions that name
	// what the photo shows, and captions that name a confident top tag that
	// is not it (a misrecognition written into the sentence).
	namesExpected, namesWrongTag, judged := 0, 0, 0
	fmt.Fprintln(w, "| photo | top tag | prob | caption | names it |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, c := range cls {
		caption, ok := captionOf[c.Image]
		if !ok {
			return fmt.Errorf("%s: no caption for %s in %s", classifyPath, c.Image, captionsPath)
		}
		probs := make([]float32, tags.NumClasses)
		for _, l := range c.Labels {
			if l.Index < 0 || l.Index >= tags.NumClasses {
				return fmt.Errorf("%s: %s has class index %d, want 0..%d", classifyPath, c.Image, l.Index, tags.NumClasses-1)
			}
			probs[l.Index] = l.Prob
		}
		ts, err := tags.Select(probs, 1, 0)
		if err != nil {
			return err
		}
		photos = append(photos, tags.Captioned{Caption: caption, Tags: ts})
		top := ts[0]
		confident := top.Prob >= threshold
		namesTag := tags.Mentions(caption, top.Noun)
		want, judge := expected[filepath.Base(c.Image)]
		tagRight := judge && tags.Mentions(want, top.Noun)
		if judge {
			judged++
			if tags.Mentions(caption, want) {
				namesExpected++
			}
			if confident && namesTag && !tagRight {
				namesWrongTag++
			}
		}
		names := "-"
		if confident {
			names = "no"
			if namesTag {
				names = "yes"
			}
			if judge {
				sure++
				if tagRight {
					right++
				}
			}
		}
		fmt.Fprintf(w, "| %s | %s (%s) | %.2f | %s | %s |\n", filepath.Base(c.Image), top.Noun, strings.SplitN(top.Label, ",", 2)[0], top.Prob, caption, names)
	}
	m, e := tags.MentionRate(photos, threshold)
	fmt.Fprintf(w, "\n%d photos; %d with a top tag at prob >= %.2f; their captions name the tag's noun in %d: mention rate %s\n", len(photos), e, threshold, m, percent(m, e))
	if setPath != "" {
		fmt.Fprintf(w, "those top tags are the photo's expected noun in %d of %d (%s)\n", right, sure, percent(right, sure))
		fmt.Fprintf(w, "captions naming the photo's expected noun: %d of %d (%s); naming a top tag at prob >= %.2f that is not it: %d\n",
			namesExpected, judged, percent(namesExpected, judged), threshold, namesWrongTag)
	}
	return nil
}

func percent(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// photo is one row of a photo set's README table.
type photo struct {
	File, Package, Path, Licence, Shows, Noun string
}

// readSet reads the photo table of a photo set README: the rows, under the
// heading "## Photos", of the markdown table whose first cell names a .jpg
// file, with six cells: file, Debian package, original path, licence, what
// it shows, expected noun.
func readSet(path string) ([]photo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var photos []photo
	sc := bufio.NewScanner(f)
	inPhotos := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			inPhotos = line == "## Photos"
		}
		if !inPhotos || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		if !strings.HasSuffix(cells[0], ".jpg") {
			continue // header or another table
		}
		if len(cells) != 6 || cells[5] == "" {
			return nil, fmt.Errorf("%s:%d: a photo row has %d cells, want 6 (file, package, path, licence, shows, noun)", path, n, len(cells))
		}
		photos = append(photos, photo{cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(photos) == 0 {
		return nil, errors.New(path + `: no photo rows under "## Photos" (| file.jpg | package | path | licence | shows | noun |)`)
	}
	return photos, nil
}
