package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/internal/atomicfile"
)

func init() {
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Print the caption decoder's architecture as Graphviz DOT (and render PNG/SVG with dot)",
		Long: `Prints the decoder of the model folder (--model) as a Graphviz digraph with layer
shapes and parameter counts, the counterpart of the seed notebook's model.png.
With --png or --svg it also renders the picture through Graphviz's dot program
(Debian package graphviz).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			dir, err := cfg.ModelDir()
			if err != nil {
				return err
			}
			mc, err := decoder.ReadConfig(filepath.Join(dir, decoder.ConfigFile))
			if err != nil {
				return fmt.Errorf("%w; point --model at a trained model folder", err)
			}
			kinds := map[string]outputKind{"png": describePNG, "svg": describeSVG}
			for _, f := range []string{"png", "svg"} {
				if path, _ := cmd.Flags().GetString(f); path != "" {
					if err := checkOutput("--"+f, path, kinds[f]); err != nil {
						return err
					}
				}
			}
			dot := mc.DOT()
			if _, err := cmd.OutOrStdout().Write([]byte(dot)); err != nil {
				return err
			}
			for _, f := range []string{"png", "svg"} {
				path, _ := cmd.Flags().GetString(f)
				if path == "" {
					continue
				}
				if err := renderDOT(dot, f, path); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", path)
			}
			return nil
		},
	}
	cmd.Flags().String("png", "", "also render the graph to this PNG file (needs Graphviz dot)")
	cmd.Flags().String("svg", "", "also render the graph to this SVG file (needs Graphviz dot)")
	rootCmd.AddCommand(cmd)
}

// renderDOT runs `dot -T<format>` on src and writes the result to path.
func renderDOT(src, format, path string) error {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return fmt.Errorf("rendering %s needs Graphviz's dot program, which is not installed (Debian: apt-get install graphviz); the DOT text above renders anywhere", format)
	}
	var out, stderr bytes.Buffer
	c := exec.Command(bin, "-T"+format)
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(src), &out, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("dot -T%s failed: %v: %s", format, err, stderr.String())
	}
	// Marked, so that a later describe replaces its own drawing and nothing
	// else (checkOutput).
	drawing := markSVG(out.Bytes())
	if format == "png" {
		if !bytes.HasPrefix(out.Bytes(), []byte(imgproc.PNGSignature)) || out.Len() < pngHeaderLen {
			return fmt.Errorf("dot -Tpng wrote no PNG (%d bytes): %.40q", out.Len(), out.Bytes())
		}
		drawing = markPNG(out.Bytes(), describeMark)
	}
	return atomicfile.WriteFile(path, drawing)
}
