package main

import (
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (defaults, file, environment, flags) as YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			out, err := yaml.Marshal(cfg.PrintableMap())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
}
