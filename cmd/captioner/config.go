package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/config"
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
			m := cfg.Map()
			for _, key := range secretSettings {
				section, name, _ := strings.Cut(key, ".")
				if sec := m[section].(map[string]any); sec[name] != "" {
					sec[name] = config.HiddenToken
				}
			}
			out, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
}

// secretSettings are the settings config prints as set, never their value:
// they come from Secrets, and `kubectl exec ... captioner config` would show them.
var secretSettings = []string{"server.admin_token", "server.live_token"}
