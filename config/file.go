package config

import (
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// checkFile refuses, before viper reads the YAML file, what viper would
// misread or explain in its decoder's terms: a top level that is not a
// mapping ("cannot unmarshal !!seq into map[string]interface {}"), and whole
// numbers not written in plain decimal, each named with its key and line (by
// the time viper hands the values over, 010 is already 8). A file it cannot
// read or parse is left to viper, whose errors say why.
func checkFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil
	}
	if len(doc.Content) == 1 && doc.Content[0].Kind != yaml.MappingNode && doc.Content[0].ShortTag() != "!!null" { // "---" alone, or ~: the defaults
		return fmt.Errorf("config: %s: its top level is a %s, not a mapping of sections; write it as configs/default.yaml does (decode:, server:, ... each with its keys under it)",
			file, map[yaml.Kind]string{yaml.SequenceNode: "list", yaml.ScalarNode: "single value", yaml.AliasNode: "alias"}[doc.Content[0].Kind])
	}
	var errs []error
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if key != "" {
					k = key + "." + k
				}
				walk(n.Content[i+1], k)
			}
		case yaml.ScalarNode:
			if n.ShortTag() == "!!int" && !IsDecimal(n.Value) {
				errs = append(errs, fmt.Errorf("config: %s: %s is not a whole number in decimal (line %d of %s): %s; a name (a folder, say) goes in quotes", key, n.Value, n.Line, file, DecimalHint))
			}
		}
	}
	walk(&doc, "")
	return errors.Join(errs...)
}
