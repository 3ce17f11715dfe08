package listing

import "testing"

func TestFirst(t *testing.T) {
	for _, c := range []struct {
		items []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c"}, "a, b, c"},
		{[]string{"a", "b", "c", "d"}, "a, b, c and 1 more"},
		{[]string{"a", "b", "c", "d", "e"}, "a, b, c and 2 more"},
	} {
		if got := First(c.items, 3); got != c.want {
			t.Errorf("First(%q, 3) = %q, want %q", c.items, got, c.want)
		}
	}
}
