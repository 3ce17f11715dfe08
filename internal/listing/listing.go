// Package listing names a few items of a list in a message, counting the
// rest, so that an error about thousands of names stays one readable line.
package listing

import (
	"fmt"
	"strings"
)

// First is the first n items joined by ", ", followed by " and K more" when
// K items are left unnamed: First([a b c d e], 3) is "a, b, c and 2 more".
func First(items []string, n int) string {
	s := strings.Join(items[:min(n, len(items))], ", ")
	if rest := len(items) - n; rest > 0 {
		s += fmt.Sprintf(" and %d more", rest)
	}
	return s
}
