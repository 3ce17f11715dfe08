package config

import (
	"slices"
	"strings"
)

// Variables of the EnvPrefix that set no configuration key: the configuration
// file (the --config flag's default), the download cache (assets.CacheDir)
// and the CPU binary's hand-over to the CUDA one (gpu/selector.HandoverEnv).
var otherEnv = []string{EnvPrefix + "_CONFIG", EnvPrefix + "_CACHE", EnvPrefix + "_CUDA_HANDOVER"}

// EnvName is the environment variable that sets a configuration key:
// server.addr is CAPTIONER_SERVER_ADDR (Load replaces dots with underscores).
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Misspelt returns, in order, the names among names that carry EnvPrefix,
// name no configuration key nor another of captioner's variables, and lie
// close to one that does, with that one: most likely a misspelt setting,
// which viper would ignore in silence. Close is within a quarter of the
// name's length after the prefix in edits, three at most, so that short
// names (CAPTIONER_HOME) are not taken for CAPTIONER_MODEL; a name that
// leaves out a key's section (CAPTIONER_BEAM) is close to the keys it ends
// ("CAPTIONER_DECODE_BEAM", or "A or B" when several do). Names further
// from every setting are left alone: another tool's, or a test's.
func Misspelt(names []string) (misspelt, meant []string) {
	known := knownEnv()
	for _, name := range unknownIn(names, known) {
		best := closest(name, min(3, len(strings.TrimPrefix(name, EnvPrefix+"_"))/4), known)
		if best == "" {
			best = strings.Join(withSection(name, known), " or ")
		}
		if best != "" {
			misspelt, meant = append(misspelt, name), append(meant, best)
		}
	}
	return misspelt, meant
}

// withSection lists the names among known that are name with a section
// put in after the prefix: CAPTIONER_DECODE_BEAM for CAPTIONER_BEAM.
func withSection(name string, known []string) []string {
	var out []string
	key := "_" + strings.TrimPrefix(name, EnvPrefix+"_")
	for _, k := range known {
		if section, ok := strings.CutSuffix(strings.TrimPrefix(k, EnvPrefix), key); ok && strings.HasPrefix(section, "_") && !strings.Contains(section[1:], "_") {
			out = append(out, k)
		}
	}
	return out
}

// closest is the name among known nearest to name, at most edits edits away;
// "" when none is that close.
func closest(name string, edits int, known []string) string {
	best, bestD := "", edits+1
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// UnknownEnv returns, in order, every name among names that carries
// EnvPrefix but names no configuration key nor another of captioner's
// variables.
func UnknownEnv(names []string) []string { return unknownIn(names, knownEnv()) }

// unknownIn is UnknownEnv against the names known.
func unknownIn(names, known []string) []string {
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, EnvPrefix+"_") && !slices.Contains(known, name) {
			out = append(out, name)
		}
	}
	return out
}

// knownEnv lists every variable of EnvPrefix that captioner reads.
func knownEnv() []string {
	known := slices.Clone(otherEnv)
	for _, k := range Keys() {
		known = append(known, EnvName(k))
	}
	return known
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
