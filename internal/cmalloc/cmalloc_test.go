package cmalloc

import (
	"os"
	"runtime"
	"testing"
)

func TestFixMmapThreshold(t *testing.T) {
	t.Setenv(MmapThresholdEnv, "") // restored after the test, which needs it unset
	t.Setenv("GLIBC_TUNABLES", "")
	if err := os.Unsetenv(MmapThresholdEnv); err != nil {
		t.Fatal(err)
	}
	want := runtime.GOOS == "linux" && cgoEnabled
	if got := FixMmapThreshold(256 << 10); got != want {
		t.Errorf("FixMmapThreshold(256 KB) = %v, want %v (linux with cgo: glibc's mallopt takes M_MMAP_THRESHOLD)", got, want)
	}
}

func TestFixMmapThresholdLeavesTheUsersSetting(t *testing.T) {
	t.Setenv(MmapThresholdEnv, "131072")
	if FixMmapThreshold(256 << 10) {
		t.Errorf("FixMmapThreshold set the threshold though %s is set", MmapThresholdEnv)
	}
	os.Unsetenv(MmapThresholdEnv) // t.Setenv restores it after the test
	t.Setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072")
	if FixMmapThreshold(256 << 10) {
		t.Error("FixMmapThreshold set the threshold though GLIBC_TUNABLES sets glibc.malloc.mmap_threshold")
	}
}

func TestFixMmapThresholdRefusesZero(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("FixMmapThreshold(0) did not panic")
		}
	}()
	FixMmapThreshold(0)
}
