// Package structdiff lists the fields in which two values of one struct type
// differ, by their JSON names: what an error refusing a mismatch (a resumed
// checkpoint, a model to start from or to average) names, so that the user
// sees which setting to change instead of two structs to compare by eye.
package structdiff

import (
	"fmt"
	"reflect"
	"strings"
)

// Field is one field that differs: Key is its JSON name, Was and Now its two
// values.
type Field struct {
	Key      string
	Was, Now any
}

// String is "KEY WAS -> NOW".
func (f Field) String() string { return fmt.Sprintf("%s %v -> %v", f.Key, f.Was, f.Now) }

// Fields lists, in declaration order, the fields in which now differs from
// was: structs of one type with comparable fields, or pointers to them.
func Fields(was, now any) []Field {
	a, b := reflect.Indirect(reflect.ValueOf(was)), reflect.Indirect(reflect.ValueOf(now))
	if a.Type() != b.Type() {
		panic(fmt.Sprintf("structdiff: %s against %s", a.Type(), b.Type()))
	}
	var diffs []Field
	for i := range a.NumField() {
		if x, y := a.Field(i).Interface(), b.Field(i).Interface(); x != y {
			f := a.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if key == "" {
				key = f.Name
			}
			diffs = append(diffs, Field{key, x, y})
		}
	}
	return diffs
}

// Join is the fields' Strings joined by "; ".
func Join(fs []Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.String()
	}
	return strings.Join(s, "; ")
}
