package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
)

func init() {
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Download and verify the public assets (encoder weights; --dataset for Flickr8k)",
		Long: `setup fills the assets cache with the public files captioner needs and checks each
against its pinned SHA-256. With CAPTIONER_ASSETS (or the assets key) set, it only verifies
that folder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			dataset, _ := cmd.Flags().GetBool("dataset")
			store, err := assets.Open(cfg.Assets)
			if err != nil {
				return err
			}
			store.Log = cmd.ErrOrStderr()
			if store.Managed {
				for _, f := range assets.Known {
					if _, err := store.Path(f.Path); err != nil {
						return err
					}
				}
				if dataset {
					for _, a := range assets.Flickr8k {
						if err := store.FetchArchive(a); err != nil {
							return err
						}
					}
				}
			} else if data := filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir)); dataset && !fileExists(data) {
				// A folder of the user's own is read, never written into.
				return fmt.Errorf("setup --dataset: %s has no Flickr8k (%s): setup downloads only into its own cache; put the dataset there yourself, or run setup --dataset without --assets or CAPTIONER_ASSETS", store.Dir, data)
			}
			if err := store.Verify(true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "assets: %s verified\n", store.Dir)
			return nil
		},
	}
	cmd.Flags().Bool("dataset", false, "also download Flickr8k (about 1 GB) into the cache")
	rootCmd.AddCommand(cmd)
}
