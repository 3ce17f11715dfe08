package main

import (
	"strconv"

	"github.com/spf13/pflag"

	"github.com/captioner/captioner/config"
)

// decimalInt is a whole-number flag that takes plain decimal alone
// (config.DecimalHint): pflag's own int flags read --max-len 010 as octal 8,
// 0x10 as 16 and 1_6 as 16. Its Type is pflag's ("int" or "int64"), so that
// GetInt and viper read it as they read those.
type decimalInt struct {
	v    int64
	bits int
	typ  string
}

func (d *decimalInt) Set(s string) error {
	n, err := config.ParseDecimal(s, d.bits)
	if err != nil {
		return err
	}
	d.v = n
	return nil
}

func (d *decimalInt) String() string { return strconv.FormatInt(d.v, 10) }

func (d *decimalInt) Type() string { return d.typ }

// intFlag defines an int flag read in plain decimal.
func intFlag(f *pflag.FlagSet, name string, value int, usage string) {
	f.Var(&decimalInt{v: int64(value), bits: strconv.IntSize, typ: "int"}, name, usage)
}

// int64Flag defines an int64 flag read in plain decimal.
func int64Flag(f *pflag.FlagSet, name string, value int64, usage string) {
	f.Var(&decimalInt{v: value, bits: 64, typ: "int64"}, name, usage)
}

// datasetFlags defines --data and --dataset, which extract, train and eval
// take alike (train.data and train.dataset).
func datasetFlags(f *pflag.FlagSet) {
	f.String("data", "", "dataset folder (flickr8k layout), JSON file (karpathy) or CSV file (csv) (default train.data, else <assets>/data/flickr8k)")
	f.String("dataset", "", "dataset format: flickr8k, karpathy or csv (default train.dataset; a .json --data is karpathy, a .csv or .tsv csv)")
}
