package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/encoder"
)

func init() {
	cmd := &cobra.Command{
		Use:   "import [MODEL.tflite]",
		Short: "Import MobileNetV2 weights from a TFLite file into the weights cache (safetensors)",
		Long: `import reads a MobileNetV2 TFLite file (uint8 or int8, per-tensor or per-channel
quantized), maps its operator graph onto captioner's encoder, dequantizes the weights
and writes them as safetensors, with the architecture in the file's metadata.

Without an argument it imports the assets folder's default encoder. The other
commands import on first use by themselves; run this to check a file or to choose
where the result goes (--out). The encoder the other commands run is always the
assets folder's
` + assets.EncoderTFLite + `:
the caption models read the features of the encoder they were trained on, and
no setting chooses another.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			var path string
			if len(args) == 1 {
				path = args[0]
			} else {
				store, err := assets.Open(cfg.Assets)
				if err != nil {
					return err
				}
				if path, err = store.Path(assets.EncoderTFLite); err != nil {
					return err
				}
			}
			out, _ := cmd.Flags().GetString("out")
			var w *encoder.Weights
			if out == "" {
				dir, err := encoder.CacheDir()
				if err != nil {
					return err
				}
				if w, _, err = encoder.Cached(path, dir); err != nil {
					return err
				}
				out = encoder.CachePath(dir, w.Config.SourceSHA)
			} else {
				if err := checkOutput("--out", out, importWeights); err != nil {
					return err
				}
				if w, err = encoder.ImportFile(path); err != nil {
					return err
				}
				if err := w.Save(out); err != nil {
					return err
				}
			}
			c := w.Config
			n := 0
			for _, v := range w.Tensors {
				n += len(v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: MobileNetV2 %dx%d, %d blocks, %d features, %d classes, %.2fM parameters\nencoder %s\nwrote %s\n",
				c.Source, c.Input, c.Input, len(c.Blocks), c.Head, c.Classes, float64(n)/1e6, c.ID(), out)
			return nil
		},
	}
	cmd.Flags().String("out", "", "output safetensors file (default: the weights cache)")
	rootCmd.AddCommand(cmd)
}
