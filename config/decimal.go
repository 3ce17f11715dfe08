package config

import (
	"errors"
	"strconv"
	"strings"
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
