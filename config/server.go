package config

import (
	"time"

	"github.com/spf13/viper"
)

// Server configures captioner serve. The server owns this file: add fields with
// a one-line reason each.
type Server struct {
	// Addr is the listen address, HOST:PORT.
	Addr string `mapstructure:"addr"`
	// MaxBatch is the largest batch the scheduler forms.
	MaxBatch int `mapstructure:"max_batch"`
	// MaxQueueDelay is how long the oldest queued request may wait for a batch to fill.
	MaxQueueDelay time.Duration `mapstructure:"max_queue_delay"`
}

func serverDefaults(v *viper.Viper) {
	v.SetDefault("server.addr", "127.0.0.1:8080")
	v.SetDefault("server.max_batch", 16)
	v.SetDefault("server.max_queue_delay", "10ms")
}

func (c Server) validate() []error {
	var errs []error
	if err := positive("server.max_batch", c.MaxBatch); err != nil {
		errs = append(errs, err)
	}
	if err := positiveDuration("server.max_queue_delay", c.MaxQueueDelay); err != nil {
		errs = append(errs, err)
	}
	return errs
}
