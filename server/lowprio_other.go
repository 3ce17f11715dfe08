//go:build !linux

package server

// niceThread does nothing where threads have no priority of their own.
func niceThread(int) {}
