package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

func load(t *testing.T, file string) (*Config, error) {
	t.Helper()
	return Load(viper.New(), file)
}

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// configs/default.yaml documents every key; it must say exactly what the code does.
func TestShippedDefaultFileEqualsBuiltInDefaults(t *testing.T) {
	builtIn, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := load(t, "../configs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(builtIn, fromFile) {
		t.Fatalf("configs/default.yaml drifted from the defaults:\nfile:     %+v\nbuilt-in: %+v\n(regenerate it with `captioner config`, which prints the assets folder it resolved: keep assets empty)", fromFile, builtIn)
	}
	v := viper.New()
	v.SetConfigFile("../configs/default.yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(v.AllKeys()), len(Keys()); got != want {
		t.Fatalf("configs/default.yaml sets %d keys, the configuration has %d", got, want)
	}
}

func TestEveryShippedConfigLoads(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) < 2 {
		t.Fatalf("expected default.yaml and gpu.yaml, found %v", files)
	}
	for _, f := range files {
		if _, err := load(t, f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// An unknown key is named, with the file's path and the key it most likely
// misspells; one like no key is named alone.
func TestUnknownKeyNamesTheKey(t *testing.T) {
	file := writeYAML(t, "server:\n  adr: 0.0.0.0:80\ndecode:\n  bem: 3\nfavourite_colour: blue\ntrain:\n  bs: 64\n")
	_, err := load(t, file)
	want := "config: " + file + ": unknown key(s) decode.bem (did you mean decode.beam?), favourite_colour, server.adr (did you mean server.addr?), train.bs; " +
		"`captioner config --config \"\"` prints every key (configs/default.yaml in the repository lists them with their defaults)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestBadValuesNameKeyAndAcceptedValues(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"device: gpu\n", `config: device: "gpu" is not one of auto, cpu, cuda $FILE`},
		{"threads: -1\n", "config: threads: -1 is negative; use 0 for every core or a positive count $FILE"},
		{"decode:\n  beam: 0\n", "config: decode.beam: 0 is outside 1..32 (1 is greedy) $FILE"},
		{"decode:\n  no_repeat: 1\n", `config: decode.no_repeat: 1 must be 0 (repeats allowed) or 2..100 (1 would forbid any word twice, "a" included) $FILE`},
		{"decode:\n  tags: 21\n", "config: decode.tags: 21 is outside 0..20 (0: no tags) $FILE"},
		{"decode:\n  guide_threshold: 1.5\n", "config: decode.guide_threshold: 1.5 is outside 0..1 (a probability) $FILE"},
		{"image:\n  max_decoded_bytes: 0\n", "config: image.max_decoded_bytes: 0 must be positive $FILE"},
		{"image:\n  max_request_decoded_bytes: 1000\n", "config: image.max_request_decoded_bytes: 1000 is less than image.max_decoded_bytes (268435456): a request could not hold one image at the limit $FILE"},
		{"server:\n  min_upload_rate: 0\n", "config: server.min_upload_rate: 0 must be positive $FILE"},
		{"server:\n  max_upload_bytes: 1048576\n", "config: server.max_upload_bytes: 1048576 is less than server.max_body_bytes (33554432): a request at the body limit could never be received $FILE"},
		{"server:\n  max_queue_delay: -1s\n", "config: server.max_queue_delay: -1s must be a positive duration such as 250ms or 30s $FILE"},
		{"train:\n  objective: bleu\n", `config: train.objective: "bleu" is not one of xe, cider $FILE`},
		{"train:\n  arch: transformer\n", `config: train.arch: "transformer" is not one of merge, attention $FILE`},
		{"train:\n  cleaning: karpathy\n", `config: train.cleaning: cleaning "karpathy" is not known; use "standard" (coco-caption, every word kept) or "seed" (the seed notebook's, drops "a") $FILE`},
		{"train:\n  att_penalty: -1\n", "config: train.att_penalty: -1 is negative; use 0 to disable the attention penalty $FILE"},
		{"train:\n  objective: cider\n", "config: train.init: empty with train.objective cider; self-critical training fine-tunes a trained model: name its folder (e.g. runs/attention/model)"},
		{"train:\n  mirror: true\n  finetune_blocks: 2\n", "config: train.mirror with train.finetune_blocks 2; mirrored photos come from extract --mirror's cached features, which a fine-tuned encoder does not read: set one of them off"},
		{"train:\n  objective: cider\n  init: runs/a/model\n  teacher: runs/t\n", "config: train.teacher: runs/t with train.objective cider; a teacher's captions are cross-entropy targets: distil with train.objective xe, then fine-tune that model with cider $FILE"},
		{"train:\n  objective: cider\n  init: runs/a/model\n  samples: 1\n", "config: train.samples: 1 is outside 2..train.batch_size (64); each sample's baseline is the mean of the others $FILE"},
		{"train:\n  feature_dropout: 1\n", "config: train.feature_dropout: 1 is outside [0, 1); 0 keeps every feature $FILE"},
		{"train:\n  feature_dropout: 0.3\n", "config: train.feature_dropout: 0.3 with train.arch merge, train.objective xe, train.finetune_blocks 0; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0 $FILE"},
		// The fine-tuned encoder's backward pass does not apply the mask.
		{"train:\n  arch: attention\n  finetune_blocks: 1\n  feature_dropout: 0.3\n", "config: train.feature_dropout: 0.3 with train.arch attention, train.objective xe, train.finetune_blocks 1; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0 $FILE"},
		{"train:\n  arch: attention\n  objective: cider\n  init: runs/a/model\n  feature_dropout: 0.3\n", "config: train.feature_dropout: 0.3 with train.arch attention, train.objective cider, train.finetune_blocks 0; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0 $FILE"},
		{"train:\n  xe_weight: -0.1\n", "config: train.xe_weight: -0.1 is negative; 0 trains on the rewards alone $FILE"},
		{"train:\n  xe_weight: 0.2\n", "config: train.xe_weight: 0.2 with train.objective xe; it mixes cross-entropy into the cider objective: set train.objective cider, or train.xe_weight 0 $FILE"},
		{"train:\n  batch_size: 1025\n", "config: train.batch_size: 1025 is above 1024: the training buffers hold every caption of a batch, word by word (1024 captions of 30 words take 5.3 GB for the shipped attention decoder's sizes, 64 take 0.4 GB); 32-256 suits captioning $FILE"},
		{"decode:\n  batch_size: 100000\n", "config: decode.batch_size: 100000 is outside 1..256 (images through the device at once; the encoder holds a whole batch's activations) $FILE"},
		{"decode:\n  beam: 1.9\n", "config: decode.beam: 1.9 is not a whole number $FILE"}, // the decoder cut it to 1
		// Past int64, read by YAML as float64 or uint64: the decoder wrapped them round to negative numbers.
		{"train:\n  seed: 99999999999999999999\n", "config: train.seed: 1e+20 is out of range: a whole number from -9223372036854775808 to 9223372036854775807 $FILE"},
		{"train:\n  seed: 9223372036854775808\n", "config: train.seed: 9223372036854775808 is out of range: a whole number from -9223372036854775808 to 9223372036854775807 $FILE"},
		{"threads: -99999999999999999999\n", "config: threads: -1e+20 is out of range: a whole number from -9223372036854775808 to 9223372036854775807 $FILE"},
		// A list where one value goes: the decoder's own error named no file.
		{"server:\n  addr: [1]\n", "config: server.addr: [1] is a list, where a string goes $FILE"},
		{"decode:\n  beam: [1, 2]\n", "config: decode.beam: [1 2] is a list, where a whole number goes $FILE"},
		{"server:\n  read_timeout: [1s]\n", "config: server.read_timeout: [1s] is a list, where a duration such as 500ms, 30s or 2m goes $FILE"},
		{"server:\n  max_batch: 100000\n", "config: server.max_batch: 100000 is above 256: the pipeline holds a whole batch's activations, sized for it at start $FILE"},
		// The first value past each bound, where the bound's own is accepted (TestLimitsAreInclusive).
		{"server:\n  max_batch: 257\n", "config: server.max_batch: 257 is above 256: the pipeline holds a whole batch's activations, sized for it at start $FILE"},
		{"server:\n  max_beam: 33\n", "config: server.max_beam: 33 is outside 1..32 $FILE"},
		{"server:\n  thumb_size: 15\n", "config: server.thumb_size: 15 is outside 16..512 pixels $FILE"},
		{"server:\n  queue_size: 8\n  max_images: 9\n", "config: server.max_images: 9 is above server.queue_size 8, so a request of more images than the queue holds would be refused as busy (429) however often it is retried; lower it or raise server.queue_size $FILE"},
		{"train:\n  objective: cider\n  init: runs/a/model\n  samples: 65\n", "config: train.samples: 65 is outside 2..train.batch_size (64); each sample's baseline is the mean of the others $FILE"},
		{"train:\n  lr: .nan\n", "config: train.lr: NaN is not a finite number $FILE"},
		{"decode:\n  alpha: .nan\n", "config: decode.alpha: NaN is not a finite number $FILE"},
		// One error a mistake: a NaN is not also outside its range, and two empty names are one error.
		{"decode:\n  tag_threshold: .nan\n", "config: decode.tag_threshold: NaN is not a finite number $FILE"},
		{"server:\n  models: [\"\", \"\"]\n", "config: server.models: an empty folder name; list caption model folders, e.g. [models/flickr8k-merge-lstm] $FILE"},
		// Choices are exact: the code compares device with "cpu".
		{"device: CPU\n", `config: device: "CPU" is not one of auto, cpu, cuda $FILE`},
		// One past each bound (TestLimitsAreInclusive loads the bounds themselves).
		{"decode:\n  beam: 33\n", "config: decode.beam: 33 is outside 1..32 (1 is greedy) $FILE"},
		{"decode:\n  max_len: 101\n", "config: decode.max_len: 101 is outside 1..100 $FILE"},
		{"decode:\n  alpha: 2.5\n", "config: decode.alpha: 2.5 is outside 0..2 (length normalisation exponent) $FILE"},
		{"decode:\n  no_repeat: -1\n", `config: decode.no_repeat: -1 must be 0 (repeats allowed) or 2..100 (1 would forbid any word twice, "a" included) $FILE`},
		{"image:\n  max_pixels: 0\n", "config: image.max_pixels: 0 must be positive $FILE"},
		{"server:\n  max_body_bytes: 1023\n", "config: server.max_body_bytes: 1023 is below 1024; images need room (e.g. 33554432 for 32 MiB) $FILE"},
		{"server:\n  thumb_size: 513\n", "config: server.thumb_size: 513 is outside 16..512 pixels $FILE"},
		{"server:\n  read_timeout: 0s\n", "config: server.read_timeout: 0s must be a positive duration such as 250ms or 30s $FILE"},
		{"server:\n  allowed_hosts: [\"\"]\n", `config: server.allowed_hosts: "" is not a host name (e.g. captions.example.com, without scheme or port) $FILE`},
		{"train:\n  out: \"\"\n", "config: train.out: empty; name a folder for checkpoints and the trained model $FILE"},
		{"train:\n  eval_beam: 0\n", "config: train.eval_beam: 0 must be positive $FILE"},
		{"train:\n  lr: 0\n", "config: train.lr: 0 is outside (0, 1]; Adam usually wants 1e-4..3e-3 $FILE"},
		{"train:\n  finetune_lr: 0\n", "config: train.finetune_lr: 0 is outside (0, 1]; 1e-5..1e-4 suits trained encoder layers $FILE"},
		{"train:\n  ema: 1\n", "config: train.ema: 1 is outside [0, 1) (0 disables the weight average; 0.999 averages over ~1000 steps) $FILE"},
		{"train:\n  dropout: 1\n", "config: train.dropout: 1 is outside [0, 1) $FILE"},
		{"train:\n  clip: -0.5\n", "config: train.clip: -0.5 is negative; use 0 to disable clipping $FILE"},
		{"train:\n  weight_decay: -0.5\n", "config: train.weight_decay: -0.5 is negative $FILE"},
		{"train:\n  finetune_blocks: -1\n", "config: train.finetune_blocks: -1 is negative; 0 keeps the encoder frozen $FILE"},
		{"train:\n  objective: cider\n  init: runs/a/model\n  finetune_blocks: 1\n", "config: train.finetune_blocks: 1 with train.objective cider; self-critical training runs on frozen features only: set train.finetune_blocks 0 (fine-tuning trains with xe) $FILE"},
	} {
		file := writeYAML(t, tc.yaml)
		_, err := load(t, file)
		// $FILE: the error names the file that set the value.
		want := strings.ReplaceAll(tc.want, " $FILE", " (set by the configuration file "+file+")")
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, want)
		}
	}
	// Cross-entropy draws no samples: a batch smaller than train.samples is fine.
	if _, err := load(t, writeYAML(t, "train:\n  batch_size: 1\n")); err != nil {
		t.Errorf("batch_size 1 with objective xe: %v", err)
	}
	// A whole number written as a fraction is one.
	if c, err := load(t, writeYAML(t, "decode:\n  beam: 2.0\n")); err != nil || c.Decode.Beam != 2 {
		t.Errorf("beam: 2.0: %v", err)
	}
}

// Each range's bounds are values it accepts: the largest beam, a request
// exactly as large as one image, a timeout equal to the one it caps.
func TestLimitsAreInclusive(t *testing.T) {
	for _, yaml := range []string{
		"decode:\n  beam: 32\n  max_len: 100\n  tags: 20\n  alpha: 2\n  no_repeat: 100\n  tag_threshold: 0\n  guide_threshold: 1\n",
		"decode:\n  no_repeat: 0\n  tags: 0\n  alpha: 0\n",
		"image:\n  max_request_decoded_bytes: 268435456\n",
		"server:\n  max_batch: 256\n  queue_size: 16\n  max_images: 16\n  thumb_size: 512\n  max_body_bytes: 1024\n",
		"server:\n  thumb_size: 16\n  request_timeout: 2m\n  max_request_timeout: 2m\n  write_timeout: 2m\n",
		"train:\n  objective: cider\n  init: runs/a/model\n  batch_size: 64\n  samples: 64\n",
		"train:\n  lr: 1\n  lr_decay: 1\n  finetune_lr: 1\n  ema: 0\n  dropout: 0\n  finetune_blocks: 0\n  batch_size: 1024\n",
	} {
		if _, err := load(t, writeYAML(t, yaml)); err != nil {
			t.Errorf("%q: %v, want it accepted", yaml, err)
		}
	}
}

// A value that is not of its key's kind is named with what the key accepts
// and where the value came from, file or environment, every such key at once.
func TestUnreadableValuesNameKindAndSource(t *testing.T) {
	file := writeYAML(t, "server:\n  max_queue_delay: soon\ndecode:\n  guide: maybe\n")
	_, err := load(t, file)
	want := `config: decode.guide: "maybe" is not true or false (set by the configuration file ` + file + `)
config: server.max_queue_delay: "soon" is not a duration such as 500ms, 30s or 2m (set by the configuration file ` + file + `)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	t.Setenv("CAPTIONER_DECODE_GUIDE_THRESHOLD", "abc")
	t.Setenv("CAPTIONER_DECODE_BEAM", "3.5")
	_, err = load(t, "")
	want = `config: decode.beam: "3.5" is not a whole number (set by the environment variable CAPTIONER_DECODE_BEAM)
config: decode.guide_threshold: "abc" is not a number (set by the environment variable CAPTIONER_DECODE_GUIDE_THRESHOLD)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// A file whose top level is not a mapping is told so, not in the YAML
// decoder's terms ("cannot unmarshal !!seq into map[string]interface {}").
func TestFileTopLevelMustBeAMapping(t *testing.T) {
	// A file of nothing but "---" or comments, or ~, is the defaults.
	for _, yaml := range []string{"---\n# decode:\n#   beam: 5\n", "~\n", ""} {
		if _, err := load(t, writeYAML(t, yaml)); err != nil {
			t.Errorf("%q: %v, want the defaults", yaml, err)
		}
	}
	for yaml, kind := range map[string]string{"- decode\n- server\n": "list", "beam\n": "single value"} {
		file := writeYAML(t, yaml)
		_, err := load(t, file)
		want := "config: " + file + ": its top level is a " + kind + ", not a mapping of sections; write it as configs/default.yaml does (decode:, server:, ... each with its keys under it)"
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", yaml, err, want)
		}
	}
}

// Whole numbers are read in plain decimal alone: the parsers below viper
// would read 010 as octal 8, 0x10 as 16 and 1_6 as 16.
func TestWholeNumbersAreDecimal(t *testing.T) {
	file := writeYAML(t, "server:\n  max_images: 010\ndecode:\n  beam: 0x3\n  max_len: 20\n")
	_, err := load(t, file)
	want := "config: server.max_images: 010 is not a whole number in decimal (line 2 of " + file + "): " + DecimalHint + "; a name (a folder, say) goes in quotes" +
		"\nconfig: decode.beam: 0x3 is not a whole number in decimal (line 4 of " + file + "): " + DecimalHint + "; a name (a folder, say) goes in quotes"
	if err == nil || err.Error() != want {
		t.Errorf("file: got %v, want %q", err, want)
	}
	t.Setenv("CAPTIONER_SERVER_MAX_IMAGES", "1_6")
	_, err = load(t, "")
	want = `config: server.max_images: "1_6" is not a whole number in decimal (` + DecimalHint + `) (set by the environment variable CAPTIONER_SERVER_MAX_IMAGES)`
	if err == nil || err.Error() != want {
		t.Errorf("environment: got %v, want %q", err, want)
	}
	t.Setenv("CAPTIONER_SERVER_MAX_IMAGES", "+10")
	if c, err := load(t, ""); err != nil || c.Server.MaxImages != 10 {
		t.Errorf("+10: %v, max_images %d", err, c.Server.MaxImages)
	}
	// In a list too: [010] was read as the name "8".
	file = writeYAML(t, "server:\n  allowed_hosts: [a.example, 010]\n")
	_, err = load(t, file)
	want = "config: server.allowed_hosts: 010 is not a whole number in decimal (line 2 of " + file + "): " + DecimalHint + "; a name (a folder, say) goes in quotes"
	if err == nil || err.Error() != want {
		t.Errorf("list: got %v, want %q", err, want)
	}
	// Flags parse with ParseDecimal, which refuses what IsDecimal does.
	if n, err := ParseDecimal("-12", 64); n != -12 || err != nil {
		t.Errorf("ParseDecimal(-12) = %d, %v", n, err)
	}
	if _, err := ParseDecimal("010", 64); err == nil || err.Error() != DecimalHint {
		t.Errorf("ParseDecimal(010): %v, want %q", err, DecimalHint)
	}
	for s, want := range map[string]bool{"0": true, "10": true, "-3": true, "+7": true, "07": false, "007": false, "0x1": false, "1_0": false, "": false, "-": false, "1e3": false, "0o7": false} {
		if IsDecimal(s) != want {
			t.Errorf("IsDecimal(%q) = %v, want %v", s, !want, want)
		}
	}
}

// Every setting has a built-in default: one without it is left out of
// `captioner config`, and its environment variable is ignored (viper binds
// only the keys it knows), as train.mirror's was.
func TestEverySettingHasADefault(t *testing.T) {
	v := viper.New()
	setDefaults(v)
	for _, st := range settings() {
		if !v.IsSet(st.key) {
			t.Errorf("%s has no default: add it to its section's defaults", st.key)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{2 * time.Minute: "2m", time.Hour: "1h", 90 * time.Second: "1m30s",
		10 * time.Millisecond: "10ms", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 0: "0s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A value out of range names where it came from, as a value of the wrong
// kind does: a flag the user set first, as it overrides the environment.
func TestRangeErrorsNameTheirSource(t *testing.T) {
	t.Setenv("CAPTIONER_DECODE_BEAM", "0")
	_, err := load(t, "")
	if want := "config: decode.beam: 0 is outside 1..32 (1 is greedy) (set by the environment variable CAPTIONER_DECODE_BEAM)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	v := viper.New()
	v.Set("decode.beam", 40) // as a bound flag's value reaches viper
	_, err = LoadWithFlags(v, "", map[string]string{"decode.beam": "beam"})
	if want := "config: decode.beam: 40 is outside 1..32 (1 is greedy) (set by the flag --beam)"; err == nil || err.Error() != want {
		t.Errorf("a flag's value: got %v, want %q", err, want)
	}
}

// The environment overrides the file, and the error says so; Explicit
// counts it even where a file repeats the default beside it.
func TestEnvironmentOverFileNamesTheEnvironment(t *testing.T) {
	t.Setenv("CAPTIONER_DECODE_BEAM", "0")
	_, err := load(t, writeYAML(t, "decode:\n  beam: 3\n"))
	if want := "config: decode.beam: 0 is outside 1..32 (1 is greedy) (set by the environment variable CAPTIONER_DECODE_BEAM)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	t.Setenv("CAPTIONER_DECODE_BEAM", "3")
	file := writeYAML(t, "decode:\n  beam: 3\n")
	v := viper.New()
	if _, err := LoadWithFlags(v, file, nil); err != nil {
		t.Fatal(err)
	}
	if !Explicit(v, file, nil)("decode.beam") {
		t.Error("decode.beam set by the environment to its default's value, beside a file that repeats it, is not explicit")
	}
}

// A bare number where a duration goes is refused: decoded, it would be
// nanoseconds, and a request_timeout of 5 failed every request.
func TestDurationWithoutUnitIsRefused(t *testing.T) {
	file := writeYAML(t, "server:\n  request_timeout: 5\n  read_timeout: 1.5\n")
	_, err := load(t, file)
	want := `config: server.request_timeout: 5 has no unit; write a duration such as 5s or 5ms (set by the configuration file ` + file + `)
config: server.read_timeout: 1.5 has no unit; write a duration such as 1.5s or 1.5ms (set by the configuration file ` + file + `)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestPrecedenceFileThenEnvThenFlag(t *testing.T) {
	file := writeYAML(t, "server:\n  max_batch: 4\n  max_queue_delay: 20ms\ndevice: cpu\n")
	t.Setenv("CAPTIONER_SERVER_MAX_BATCH", "6")
	v := viper.New()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("device", "auto", "")
	if err := v.BindPFlag("device", fs.Lookup("device")); err != nil {
		t.Fatal(err)
	}
	// An unset flag leaves the file's value.
	c, err := Load(v, file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device != "cpu" || c.Server.MaxBatch != 6 || c.Server.MaxQueueDelay != 20*time.Millisecond {
		t.Fatalf("device %q max_batch %d delay %s: want cpu (file), 6 (env over file), 20ms (file)", c.Device, c.Server.MaxBatch, c.Server.MaxQueueDelay)
	}
	if err := fs.Parse([]string{"--device", "cuda"}); err != nil {
		t.Fatal(err)
	}
	v2 := viper.New()
	if err := v2.BindPFlag("device", fs.Lookup("device")); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(v2, file); err != nil || c.Device != "cuda" {
		t.Fatalf("a set flag must win over the file: %q %v", c.Device, err)
	}
}

func TestAssetsFallsBackToEnvironment(t *testing.T) {
	t.Setenv("CAPTIONER_ASSETS", "/some/where")
	c, err := load(t, "")
	if err != nil || c.Assets != "/some/where" {
		t.Fatalf("assets %q, %v", c.Assets, err)
	}
	// Neither set: a shared folder under the working directory (locate.Shared).
	t.Setenv("CAPTIONER_ASSETS", "")
	wd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(wd, "shared", "models", "mobilenet_v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	if c, err = load(t, ""); err != nil || c.Assets != filepath.Join(wd, "shared") {
		t.Fatalf("assets %q, %v; want %s", c.Assets, err, filepath.Join(wd, "shared"))
	}
}

// The trainer asks Conflicts of runs built in code, whose empty objective is xe.
func TestConflictsTakeAnEmptyObjectiveAsXE(t *testing.T) {
	errs := Train{XEWeight: 0.2}.Conflicts()
	want := "train.xe_weight: 0.2 with train.objective xe; it mixes cross-entropy into the cider objective: set train.objective cider, or train.xe_weight 0"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v, want %q", errs, want)
	}
	if errs := (Train{Objective: "cider", XEWeight: 0.2}).Conflicts(); len(errs) != 0 {
		t.Errorf("xe_weight with cider: %v", errs)
	}
}

func TestMissingFileNamesTheFlag(t *testing.T) {
	_, err := load(t, "nowhere.yaml")
	want := "config: nowhere.yaml does not exist; pass --config (or set CAPTIONER_CONFIG) with a YAML file such as configs/default.yaml, or neither for the defaults"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// The shipped model is found from the repository root; elsewhere (where no
// install holds it) ModelDir's error names --model.
func TestModelDir(t *testing.T) {
	t.Chdir("..")
	c, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if dir, err := c.ModelDir(); err != nil || dir != DefaultModel {
		t.Errorf("from the repository root: %q, %v; want %q", dir, err, DefaultModel)
	}
	// A folder that is not found is kept as given, for ModelDir's error.
	t.Chdir(t.TempDir())
	if c, err = load(t, writeYAML(t, "model: runs/none\n")); err != nil || c.Model != "runs/none" {
		t.Fatalf("model runs/none: %v, model %q", err, c.Model)
	}
	_, err = c.ModelDir()
	want := "model (--model): model folder runs/none not found: give the folder of a trained model, or install the shipped one with `make install`"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestJSONDataIsKarpathy: a train.data naming a JSON file reads it as the
// Karpathy format whatever train.dataset says (the flickr8k format is a
// folder); a folder keeps train.dataset.
func TestJSONDataIsKarpathy(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"train:\n  data: /data/dataset_mine.JSON\n", "karpathy"},
		{"train:\n  data: /data/dataset_mine.json\n  dataset: flickr8k\n", "karpathy"},
		{"train:\n  data: /data/mine\n", "flickr8k"},
		{"train:\n  data: /data/mine\n  dataset: karpathy\n", "karpathy"},
	} {
		c, err := load(t, writeYAML(t, tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if c.Train.Dataset != tc.want {
			t.Errorf("%q: train.dataset %q, want %q", tc.yaml, c.Train.Dataset, tc.want)
		}
	}
}

// A configuration file is YAML whatever its name ends in: viper chose its
// parser by the extension and refused "myconf" (Unsupported Config Type "").
func TestConfigFileWithoutExtension(t *testing.T) {
	p := filepath.Join(t.TempDir(), "myconf")
	if err := os.WriteFile(p, []byte("decode:\n  beam: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, p)
	if err != nil || c.Decode.Beam != 2 {
		t.Fatalf("a YAML file named myconf: %v (beam %v)", err, c)
	}
}

// A section given a value ("decode: 5") is named as a section, not as an
// unknown key.
func TestSectionGivenAValue(t *testing.T) {
	file := writeYAML(t, "decode: 5\n")
	_, err := load(t, file)
	want := "config: " + file + ": unknown key(s) decode (a section, not a value: write its keys under it, e.g. decode.beam); `captioner config --config \"\"` prints every key (configs/default.yaml in the repository lists them with their defaults)"
	if err == nil || err.Error() != want {
		t.Errorf("decode: 5: %v\nwant %s", err, want)
	}
}

// A section whose keys are all commented out ("cuda:" alone, as a copy of
// configs/default.yaml trimmed down leaves it) is no error: its defaults.
func TestEmptySectionIsItsDefaults(t *testing.T) {
	c, err := load(t, writeYAML(t, "cuda:\ndecode:\n# beam: 5\nserver:\n  max_images: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Decode.Beam != 3 || c.Server.MaxImages != 7 || c.Decode.GuideThreshold != 0.8 {
		t.Errorf("decode.beam %d, server.max_images %d, decode.guide_threshold %g; want the defaults 3 and 0.8 beside the 7 set", c.Decode.Beam, c.Server.MaxImages, c.Decode.GuideThreshold)
	}
}

// Explicit tells a value the user set, by environment or flag (even to the
// default's own value) or by the file (to another value: a copy of
// configs/default.yaml lists every key), from a default.
func TestExplicit(t *testing.T) {
	t.Setenv("CAPTIONER_TRAIN_HIDDEN", "256") // the default's value, set
	file := writeYAML(t, "train:\n  arch: attention\n  mid: 256\n  att: 512\n")
	v := viper.New()
	v.Set("train.embed", 64) // as a bound flag's value reaches viper
	flags := map[string]string{"train.embed": "embed"}
	if _, err := LoadWithFlags(v, file, flags); err != nil {
		t.Fatal(err)
	}
	explicit := Explicit(v, file, flags)
	for key, want := range map[string]bool{"train.arch": true, "train.hidden": true, "train.embed": true, "train.mid": false, "train.att": false, "decode.beam": false} {
		if got := explicit(key); got != want {
			t.Errorf("Explicit(%s) = %v, want %v", key, got, want)
		}
	}
}

// With train.init, the architecture may come from the model (train's
// inheritNetwork), so feature_dropout is not refused against the default
// merge at load; the trainer's Conflicts sees the run's architecture.
func TestFeatureDropoutWithInitWaitsForTheArchitecture(t *testing.T) {
	c, err := load(t, writeYAML(t, "train:\n  init: runs/a/model\n  feature_dropout: 0.2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "train.feature_dropout: 0.2 with train.arch merge, train.objective xe, train.finetune_blocks 0; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0"
	if errs := c.Train.Conflicts(); len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("the trainer's Conflicts with arch merge: %v, want %q", errs, want)
	}
}
