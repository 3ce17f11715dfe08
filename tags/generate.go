package tags

//go:generate go run ./internal/gen
