// Command captioner captions images: a MobileNetV2 encoder and an LSTM decoder,
// served over HTTP with dynamic batching, trained on Flickr8k, on CPU or CUDA.
package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/locate"
)

var rootCmd = &cobra.Command{
	Use:           "captioner",
	Short:         "Image captioning: MobileNetV2 encoder + LSTM decoder, on CPU or CUDA",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// settings holds the viper instance that flags are bound to; loadConfig reads it.
var settings = viper.New()

// boundFlags is the flag bound to each configuration key, as settings has it
// (the last bound), so that loadConfig can name the flags the user set.
var boundFlags = map[string]*pflag.Flag{}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.String("config", os.Getenv("CAPTIONER_CONFIG"), "YAML configuration file (env CAPTIONER_CONFIG)")
	pf.String("device", "auto", "where kernels run: auto, cpu or cuda")
	pf.String("assets", "", "assets folder laid out like shared/ (env CAPTIONER_ASSETS; empty: a shared/ beside the working directory or the repository, else the download cache)")
	pf.String("model", config.DefaultModel, "caption model folder (the shipped one is also found beside the binary and in "+locate.SharePrefix+")")
	intFlag(pf, "threads", 0, "CPU threads for kernels (0: every core)")
	pf.String("precision", "auto", "precision when captioning: auto (the encoder in bfloat16 where the CPU runs it fast, else float32; the decoder in int8 where the CPU has AVX512-VNNI, else as the encoder), float32, bfloat16 (the encoder, and the decoder where the CPU has AVX512-BF16) or int8 (the encoder; the decoder as auto's)")
	for _, k := range []string{"device", "assets", "model", "threads", "precision"} {
		bindFlag(pf, k, k)
	}
}

// bindFlag makes flag name override configuration key key, but only when the user
// sets it, so that files and environment variables keep their say otherwise.
func bindFlag(fs *pflag.FlagSet, name, key string) {
	f := fs.Lookup(name)
	if err := settings.BindPFlag(key, f); err != nil {
		panic("captioner: binding flag " + name + ": " + err.Error())
	}
	boundFlags[key] = f
}

// setFlags maps each configuration key a flag the user set overrides to the
// flag's name (config.LoadWithFlags).
func setFlags() map[string]string {
	out := map[string]string{}
	for key, f := range boundFlags {
		if f.Changed {
			out[key] = f.Name
		}
	}
	return out
}

// loadConfig returns the effective configuration for the running command.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	file, err := cmd.Flags().GetString("config")
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadWithFlags(settings, file, setFlags())
	if err != nil {
		return nil, err
	}
	if cmd.Name() != "serve" { // serve logs them in its JSON log
		for _, w := range misspeltEnv(os.Environ()) {
			fmt.Fprintln(cmd.ErrOrStderr(), "captioner: warning: "+w)
		}
	}
	return cfg, nil
}

// explicitSettings says which settings the user of the running command set
// (config.Explicit), once loadConfig has loaded them.
func explicitSettings(cmd *cobra.Command) func(key string) bool {
	file, _ := cmd.Flags().GetString("config")
	return config.Explicit(settings, file, setFlags())
}

// misspeltEnv is a warning for each CAPTIONER_* variable of environ
// (NAME=VALUE) that sets nothing but resembles a setting (config.Misspelt):
// without it the misspelt setting would be ignored in silence.
func misspeltEnv(environ []string) []string {
	names := make([]string, len(environ))
	for i, kv := range environ {
		names[i], _, _ = strings.Cut(kv, "=")
	}
	slices.Sort(names)
	misspelt, meant := config.Misspelt(names)
	out := make([]string, len(misspelt))
	for i, name := range misspelt {
		out[i] = fmt.Sprintf("the environment variable %s sets no setting and is ignored; did you mean %s?", name, meant[i])
	}
	return out
}

// atLeast is cobra.MinimumNArgs with an error that shows how to call the
// command, where cobra's says only how many arguments it got.
func atLeast(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%s needs at least %d %s, got %d: %s", cmd.Name(), n, what, len(args), cmd.UseLine())
		}
		return nil
	}
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintln(os.Stderr, "captioner:", err)
		}
		os.Exit(1)
	}
}
