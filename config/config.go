// Package config loads captioner's configuration: defaults, then a YAML file
// (configs/*.yaml or --config), then CAPTIONER_* environment variables, then flags.
// Unknown keys and bad values fail at startup with a message naming the key.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/captioner/captioner/internal/locate"
)

// Config is the whole effective configuration. Each area lives in its own file
// with its defaults and its checks.
type Config struct {
	// Device selects where kernels run: auto (a GPU when one and the CUDA build are
	// present, else the CPU), cpu, or cuda.
	Device string `mapstructure:"device"`
	// Threads caps CPU kernel threads; 0 uses every core.
	Threads int `mapstructure:"threads"`
	// Precision is what the image encoder computes in when captioning (caption,
	// eval, serve): auto (bfloat16 where the CPU runs it fast: AMX, or
	// AVX512-BF16 dot products at least 1.5x float32 FMAs, as on AMD's Zen 4; else float32), float32,
	// bfloat16 or int8 (activations and weights in 8 bits, with the quantized
	// TFLite file's activation ranges; see encoder.New). The decoder's products
	// follow it (pipeline.decoderPrecision): with auto and int8 they run in
	// int8 where the CPU has AVX512-VNNI. Feature extraction for training
	// always uses float32, so cached features do not depend on the machine.
	Precision string `mapstructure:"precision"`
	// Assets is a folder laid out like the project's shared assets
	// (models/mobilenet_v2/..., data/flickr8k/...). Empty: CAPTIONER_ASSETS, else
	// a shared folder beside the working directory or the repository
	// (locate.Shared), else the download cache.
	Assets string `mapstructure:"assets"`
	// Model is the caption model folder used by caption, eval and serve.
	Model string `mapstructure:"model"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `mapstructure:"log_level"`

	CUDA   CUDA   `mapstructure:"cuda"`
	Image  Image  `mapstructure:"image"`
	Decode Decode `mapstructure:"decode"`
	Train  Train  `mapstructure:"train"`
	Server Server `mapstructure:"server"`
}

// EnvPrefix prefixes every environment variable: CAPTIONER_SERVER_ADDR sets server.addr.
const EnvPrefix = "CAPTIONER"

// DefaultModel is the shipped model, relative to the repository root.
const DefaultModel = "models/flickr8k-attention"

func setDefaults(v *viper.Viper) {
	v.SetDefault("device", "auto")
	v.SetDefault("threads", 0)
	v.SetDefault("precision", "auto")
	v.SetDefault("assets", "")
	v.SetDefault("model", DefaultModel)
	v.SetDefault("log_level", "info")
	cudaDefaults(v)
	imageDefaults(v)
	decodeDefaults(v)
	trainDefaults(v)
	serverDefaults(v)
}

func (c *Config) validate() error {
	var errs []error
	if err := oneOf("device", c.Device, "auto", "cpu", "cuda"); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("precision", c.Precision, "auto", "float32", "bfloat16", "int8"); err != nil {
		errs = append(errs, err)
	}
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("threads: %d is negative; use 0 for every core or a positive count", c.Threads))
	}
	if err := oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error"); err != nil {
		errs = append(errs, err)
	}
	nonFinite := c.nonFinite()
	for _, nf := range nonFinite {
		errs = append(errs, fmt.Errorf("%s: %v is not a finite number", nf.key, nf.v))
	}
	for _, err := range slices.Concat(c.Image.validate(), c.Decode.validate(), c.Train.validate(), c.Server.validate(), c.hiddenTokens()) {
		// A key already refused as not finite: its range check would only
		// say the same again ("NaN is outside 0..1").
		if !slices.ContainsFunc(nonFinite, func(nf badNumber) bool { return strings.HasPrefix(err.Error(), nf.key+":") }) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// badNumber is a number setting that is not finite: its key and value.
type badNumber struct {
	key string
	v   float64
}

// nonFinite lists the number settings that hold NaN or an infinity, which the
// range checks cannot refuse: NaN fails every comparison, so `x < lo || x > hi`
// let train.lr NaN train an epoch of NaN.
func (c *Config) nonFinite() []badNumber {
	var bad []badNumber
	v := reflect.ValueOf(c).Elem()
	for _, st := range settings() {
		if f := v.FieldByIndex(st.index); f.Kind() == reflect.Float64 && (math.IsNaN(f.Float()) || math.IsInf(f.Float(), 0)) {
			bad = append(bad, badNumber{st.key, f.Float()})
		}
	}
	return bad
}

// Load builds the configuration from v, which already holds any bound flags.
// file is an explicit YAML path ("" means none). Environment variables override
// the file; flags bound to v override both.
func Load(v *viper.Viper, file string) (*Config, error) { return LoadWithFlags(v, file, nil) }

// LoadWithFlags is Load, told which flags the user set: flags maps each
// setting a set flag overrides to the flag's name (decode.beam: beam), so that
// an error about its value names the flag.
func LoadWithFlags(v *viper.Viper, file string, flags map[string]string) (*Config, error) {
	from := origins{v: v, file: file, flags: flags}
	setDefaults(v)
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml") // whatever the name ends in: viper would refuse a file named without .yaml
		if err := checkFile(file); err != nil {
			return nil, err
		}
		if err := v.ReadInConfig(); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config: %s does not exist; pass --config (or set CAPTIONER_CONFIG) with a YAML file such as configs/default.yaml, or neither for the defaults", file)
		} else if err != nil {
			return nil, fmt.Errorf("config: reading %s: %w", file, err)
		}
		if err := checkKnownKeys(v, file); err != nil {
			return nil, err
		}
	}
	var c Config
	// Environment variables only reach Unmarshal for keys viper knows, which every
	// key does through its default.
	dec := func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			stringToList,
		)
	}
	if err := kindErrors(from); err != nil {
		return nil, err
	}
	if err := v.Unmarshal(&c, dec); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Train.inferDataset()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", withSources(err, from))
	}
	if c.Assets == "" {
		c.Assets = os.Getenv("CAPTIONER_ASSETS")
	}
	if c.Assets == "" {
		c.Assets, _ = locate.Shared()
	}
	// The commands that need the model say so with ModelDir's error; the others
	// (setup, train) run without one.
	if dir, err := c.ModelDir(); err == nil {
		c.Model = dir
	}
	return &c, nil
}

// stringToList decodes a string where a list goes (an environment
// variable's value) as its comma-separated items, and a flag's list as its
// items, each trimmed of spaces: CAPTIONER_SERVER_TRUSTED_PROXIES="10.0.0.0/8,
// 192.168.0.0/16" was refused for the space, and --models "a, b" named " b".
func stringToList(_, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.Slice {
		return data, nil
	}
	var items []string
	switch v := data.(type) {
	case string:
		if v == "" {
			return []string{}, nil
		}
		items = strings.Split(v, ",")
	case []string:
		items = slices.Clone(v)
	default:
		return data, nil
	}
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items, nil
}

// ModelDir returns the caption model folder, looking for the shipped model
// beside the binary and in the install prefix when it is not under the
// working directory (locate.Model), or an error naming the setting.
func (c *Config) ModelDir() (string, error) {
	dir, err := locate.Model(c.Model, DefaultModel)
	if err != nil {
		return "", fmt.Errorf("model (--model): %w", err)
	}
	return dir, nil
}

// checkKnownKeys rejects keys in the file that no field declares, naming them and
// the keys that exist, because a misspelt key would otherwise be silently ignored.
func checkKnownKeys(v *viper.Viper, file string) error {
	keys := Keys()
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
	}
	sections := map[string]string{} // section -> its first key
	for _, k := range keys {
		if s, _, ok := strings.Cut(k, "."); ok && sections[s] == "" {
			sections[s] = k
		}
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if !known[k] && !(sections[k] != "" && !v.InConfig(k)) { // "cuda:" with every key commented out: the defaults
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	for i, k := range unknown {
		if first, ok := sections[k]; ok { // "decode: 5"
			unknown[i] += " (a section, not a value: write its keys under it, e.g. " + first + ")"
			continue
		}
		// An edit for each four letters of the key's last part, one at
		// least, three at most: the section's name would let train.bs pass
		// for train.lr.
		leaf := k[strings.LastIndexByte(k, '.')+1:]
		if meant := closest(k, min(3, max(1, len(leaf)/4)), keys); meant != "" {
			unknown[i] += " (did you mean " + meant + "?)"
		}
	}
	return fmt.Errorf("config: %s: unknown key(s) %s; `captioner config --config \"\"` prints every key (configs/default.yaml in the repository lists them with their defaults)",
		file, strings.Join(unknown, ", "))
}

// Keys lists every configuration key, dotted, in declaration order.
func Keys() []string {
	var keys []string
	for _, s := range settings() {
		keys = append(keys, s.key)
	}
	return keys
}

// setting is one configuration key, the Go type its value decodes to, and
// where Config holds it (reflect.Value.FieldByIndex).
type setting struct {
	key   string
	typ   reflect.Type
	index []int
}

// settings lists every configuration key of Config, dotted, in declaration
// order, with its type.
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, at := prefix+f.Tag.Get("mapstructure"), append(slices.Clip(index), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, name+".", at)
				continue
			}
			out = append(out, setting{name, f.Type, at})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// shortDuration writes d as a person would: "2m", not time's "2m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Map returns c as nested maps keyed as a configuration file keys it, for
// `captioner config`: values as decoded (CAPTIONER_DECODE_BEAM=5 a number, a
// comma-separated list a list), durations as a file writes them ("30s", "2m"). The
// raw settings would print an environment variable's string as it came.
func (c *Config) Map() map[string]any {
	root, cv := map[string]any{}, reflect.ValueOf(*c)
	for _, st := range settings() {
		f := cv.FieldByIndex(st.index)
		val := f.Interface()
		if st.typ == durationType {
			val = shortDuration(time.Duration(f.Int()))
		}
		m, path := root, strings.Split(st.key, ".")
		for _, section := range path[:len(path)-1] {
			if _, ok := m[section]; !ok {
				m[section] = map[string]any{}
			}
			m = m[section].(map[string]any)
		}
		m[path[len(path)-1]] = val
	}
	return root
}

func oneOf(key, val string, allowed ...string) error {
	for _, a := range allowed {
		if val == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", key, val, strings.Join(allowed, ", "))
}

func positive(key string, val int) error {
	if val <= 0 {
		return fmt.Errorf("%s: %d must be positive", key, val)
	}
	return nil
}

func positiveDuration(key string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: %s must be a positive duration such as 250ms or 30s", key, d)
	}
	return nil
}

// beyondInt64 says whether a YAML number v is past int64's range: YAML reads
// a whole number that int64 cannot hold as uint64 or float64.
func beyondInt64(v any) bool {
	switch n := v.(type) {
	case uint64:
		return n > math.MaxInt64
	case float64:
		return n >= math.MaxInt64 || n < math.MinInt64 // float64(MaxInt64) is 2^63, out of range
	}
	return false
}

// kindErrors names each setting whose value, from the environment or file,
// cannot be read as its default's kind, with what it accepts and where the
// value came from. The decoder's own message ("decoding failed due to the
// following error(s): ... strconv.ParseFloat: invalid syntax") says neither.
func kindErrors(from origins) error {
	var errs []error
	for _, st := range settings() {
		raw := from.v.Get(st.key)
		if st.typ == durationType && isNumber(raw) {
			// The decoder would take a bare YAML number as nanoseconds: a
			// request_timeout of 5 failed every request after 5 ns.
			errs = append(errs, fmt.Errorf("config: %s: %v has no unit; write a duration such as %vs or %vms%s", st.key, raw, raw, raw, from.of(st.key)))
			continue
		}
		if f, ok := raw.(float64); ok && (st.typ.Kind() == reflect.Int || st.typ.Kind() == reflect.Int64) && f != math.Trunc(f) {
			// The decoder would cut a YAML 1.9 to 1 without a word.
			errs = append(errs, fmt.Errorf("config: %s: %v is not a whole number%s", st.key, f, from.of(st.key)))
			continue
		}
		if isInt := st.typ.Kind() == reflect.Int || st.typ.Kind() == reflect.Int64; isInt && beyondInt64(raw) {
			// The decoder would wrap a YAML 99999999999999999999 round to
			// -9223372036854775808 without a word.
			errs = append(errs, fmt.Errorf("config: %s: %v is out of range: a whole number from %d to %d%s", st.key, raw, math.MinInt64, math.MaxInt64, from.of(st.key)))
			continue
		}
		if list, ok := raw.([]any); ok && st.typ.Kind() != reflect.Slice {
			// The decoder's own error named neither the file nor the fix.
			errs = append(errs, fmt.Errorf("config: %s: %.64s is a list, where %s goes%s", st.key, fmt.Sprint(list), kindWanted(st.typ), from.of(st.key)))
			continue
		}
		val, ok := raw.(string)
		if !ok {
			continue // typed already: a default, a flag, or a YAML value of the right kind
		}
		// Parsed as the decoder parses it (mapstructure's weak decoding: an
		// empty string is the zero value), so that nothing it takes is
		// refused here, except whole numbers in other bases than decimal
		// (decimal.go), which it takes and nobody means.
		var err error
		want := kindWanted(st.typ)
		switch {
		case st.typ == durationType:
			_, err = time.ParseDuration(val)
		case val == "":
		case st.typ.Kind() == reflect.Float64:
			_, err = strconv.ParseFloat(val, 64)
		case st.typ.Kind() == reflect.Int || st.typ.Kind() == reflect.Int64:
			if _, err = strconv.ParseInt(val, 0, 64); err == nil && !IsDecimal(val) {
				err, want = errors.New(DecimalHint), "a whole number in decimal ("+DecimalHint+")"
			}
		case st.typ.Kind() == reflect.Bool:
			_, err = strconv.ParseBool(val)
		}
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("config: %s: %.64q is not %s%s", st.key, val, want, from.of(st.key)))
	}
	return errors.Join(errs...)
}

// kindWanted says what a setting of type typ takes, for errors.
func kindWanted(typ reflect.Type) string {
	switch {
	case typ == durationType:
		return "a duration such as 500ms, 30s or 2m"
	case typ.Kind() == reflect.Float64:
		return "a number"
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		return "a whole number"
	case typ.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// origins are where settings' values come from: the flags the user set
// (setting -> flag name), the environment, the configuration file, defaults.
type origins struct {
	v     *viper.Viper
	file  string
	flags map[string]string
}

// of says where key's value came from, " (set by the flag --beam)", " (set
// by the environment variable CAPTIONER_...)" or " (set by the configuration
// file ...)", or nothing for a default: a user told that a value is wrong
// should not have to find which of the three set it.
func (o origins) of(key string) string {
	switch o.source(key) {
	case fromFlag:
		return " (set by the flag --" + o.flags[key] + ")"
	case fromEnv:
		return " (set by the environment variable " + EnvName(key) + ")"
	case fromFile:
		return " (set by the configuration file " + o.file + ")"
	}
	return ""
}

// source is where a setting's value came from.
type source int

const (
	fromDefault source = iota
	fromFlag
	fromEnv
	fromFile
)

// source says which of the flags, the environment, the file and the
// defaults gave key its value: the first that sets it.
func (o origins) source(key string) source {
	switch {
	case o.flags[key] != "":
		return fromFlag
	case os.Getenv(EnvName(key)) != "":
		return fromEnv
	case o.file != "" && o.v.InConfig(key):
		return fromFile
	}
	return fromDefault
}

// Explicit reports, for a configuration LoadWithFlags loaded from v, file and
// flags, whether the user set a key (e.g. "train.arch") by a flag or the
// environment, or to another value than its default in the configuration
// file (a copy of configs/default.yaml lists every key), rather than leaving
// it at its default: train takes a setting left alone from the model it
// starts from.
func Explicit(v *viper.Viper, file string, flags map[string]string) func(key string) bool {
	from := origins{v: v, file: file, flags: flags}
	defaults := viper.New()
	setDefaults(defaults)
	return func(key string) bool {
		switch from.source(key) {
		case fromFlag, fromEnv:
			return true
		case fromFile:
			return fmt.Sprint(v.Get(key)) != fmt.Sprint(defaults.Get(key))
		}
		return false
	}
}

// withSources adds where its value came from (origins.of) to each of err's
// errors that is about one setting (it starts "key: "), as validate's range
// and choice errors are.
func withSources(err error, from origins) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	known := map[string]bool{}
	for _, st := range settings() {
		known[st.key] = true
	}
	for i, e := range errs {
		if key, _, ok := strings.Cut(e.Error(), ": "); ok && known[key] {
			if src := from.of(key); src != "" {
				errs[i] = fmt.Errorf("%w%s", e, src)
			}
		}
	}
	return errors.Join(errs...)
}

// isNumber reports whether a configuration value is a number as YAML decodes one.
func isNumber(v any) bool {
	switch v.(type) {
	case int, int64, uint64, float64:
		return true
	}
	return false
}
