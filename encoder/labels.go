package encoder

import (
	"fmt"
	"os"
	"strings"
)

// LoadLabels reads class labels, one per line (line 1 is class 0), and checks
// that there is one per class of the classifier.
func LoadLabels(path string, classes int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	labels := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n")
	if len(labels) != classes {
		return nil, fmt.Errorf("encoder: %s has %d labels, the classifier has %d classes", path, len(labels), classes)
	}
	return labels, nil
}
