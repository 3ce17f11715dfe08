package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Whole numbers are read in decimal alone, from flags, the environment and
// the configuration file: Go's parsers and YAML's also read 010 as octal 8,
// 0x10 as 16, 0b11 as 3 and 1_6 as 16, which nobody who writes a batch size,
// a port or a beam width means.

// DecimalHint is what the errors about a whole number in another form say to do.
const DecimalHint = "write whole numbers in plain decimal, without leading zeros, 0x, 0o, 0b or _"

// IsDecimal reports whether s is a whole number in plain decimal: an optional
// sign, then 0 or digits that do not start with 0.
func IsDecimal(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseDecimal parses a whole number of bitSize bits written in plain decimal.
func ParseDecimal(s string, bitSize int) (int64, error) {
	if !IsDecimal(s) {
		return 0, errors.New(DecimalHint)
	}
	return strconv.ParseInt(s, 10, bitSize)
}

// fileIntegers refuses the whole numbers of the YAML file that are not
// written in plain decimal, naming each with its key and line: by the time
// viper hands the values over, 010 is already 8.
func fileIntegers(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config: reading %s: %w", file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil // viper has read it already, and reports its own errors
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
				errs = append(errs, fmt.Errorf("config: %s: %s is not a whole number in decimal (line %d of %s): %s", key, n.Value, n.Line, file, DecimalHint))
			}
		}
	}
	walk(&doc, "")
	return errors.Join(errs...)
}
