package config

import "github.com/spf13/viper"

// Train holds the training hyperparameters (captioner train). The trainer owns
// this file: add fields with a one-line reason each.
type Train struct {
	// Seed makes a run reproducible: the same seed gives the same run.
	Seed int64 `mapstructure:"seed"`
}

func trainDefaults(v *viper.Viper) {
	v.SetDefault("train.seed", 1)
}

func (c Train) validate() []error {
	return nil
}
