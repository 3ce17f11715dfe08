package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// pids names the server process behind each target (-pid NAME=PID), so that
// loadgen can charge each level the CPU time the server spent on it.
type pids map[string]int

func (p pids) String() string { return fmt.Sprint(map[string]int(p)) }

func (p pids) Set(v string) error {
	name, raw, ok := strings.Cut(v, "=")
	pid, err := strconv.Atoi(raw)
	if !ok || err != nil || pid < 1 {
		return fmt.Errorf("%q: want NAME=PID, the target's name and its server's process id, e.g. captioner=1234", v)
	}
	if _, err := cpuSeconds(pid); err != nil {
		return err
	}
	p[name] = pid
	return nil
}

// userHZ is the unit of /proc/PID/stat's CPU times: Linux fixes it at 100 per
// second for user space whatever the kernel's own tick.
const userHZ = 100

// cpuSeconds is the user + system CPU time process pid has used so far, all
// its threads together, from /proc/PID/stat (Linux).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading process %d's CPU time (loadgen -pid needs Linux's /proc and a running process): %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces: count
	// fields after its closing one. utime and stime are fields 14 and 15.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the command name, want at least 13", pid, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q are not numbers", pid, f[11], f[12])
	}
	return (utime + stime) / userHZ, nil
}

// cpuMeter reads a target's server CPU time before and after a level; with no
// pid it reads nothing.
type cpuMeter struct {
	pid   int
	start float64
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid}
	if pid > 0 {
		var err error
		if m.start, err = cpuSeconds(pid); err != nil {
			m.pid = 0 // no figure rather than the process's whole lifetime
		}
	}
	return m
}

// checkPIDs refuses a -pid whose name is no -target's: its CPU would be
// measured for nothing, and the level it was meant for would lack it.
func checkPIDs(p pids, tgs targets) error {
	for name := range p {
		if !slices.ContainsFunc(tgs, func(t target) bool { return t.name == name }) {
			return fmt.Errorf("-pid %s=%d: no -target is named %s", name, p[name], name)
		}
	}
	return nil
}

// perRequest is the CPU milliseconds the server spent per answered request
// since startCPU; 0 without a pid or an answer.
func (m cpuMeter) perRequest(answered int) float64 {
	if m.pid == 0 || answered == 0 {
		return 0
	}
	end, err := cpuSeconds(m.pid)
	if err != nil {
		return 0
	}
	return (end - m.start) * 1000 / float64(answered)
}

// stages is where captioner's time per image went in one level, from its
// /metrics: preparation (JPEG decoding and resizing, one thread per image) and
// the encoder's and decoder's batch times shared out over the batch's images.
type stages struct {
	Preprocess float64 `json:"preprocess_ms_per_image"`
	Encode     float64 `json:"encode_ms_per_image"`
	Decode     float64 `json:"decode_ms_per_image"`
}

func stagesBetween(before, after map[string]float64) stages {
	delta := func(k string) float64 { return after[k] - before[k] }
	per := func(sum, count string) float64 {
		if n := delta(count); n > 0 {
			return delta(sum) * 1000 / n
		}
		return 0
	}
	return stages{
		Preprocess: per("captioner_preprocess_seconds_sum", "captioner_preprocess_seconds_count"),
		Encode:     per("captioner_encode_seconds_sum", "captioner_images_captioned_total"),
		Decode:     per("captioner_decode_seconds_sum", "captioner_images_captioned_total"),
	}
}

// encoderGFLOP is MobileNetV2 1.0/224's work per image: 300 million
// multiply-adds (Sandler et al. 2018, Table 3), two FLOPs each.
const encoderGFLOP = 0.6

// printAccounts charges each level's CPU time per request against what the
// machine's cores can give: 1000 CPU-ms per core per second bound the
// requests per second any server can answer here. Each line names its round
// when perRound.
func printAccounts(levels []levelResult, perRound bool) {
	cores := runtime.NumCPU()
	header := false
	for _, r := range levels {
		if r.CPUms == 0 {
			continue
		}
		if !header {
			fmt.Printf("\nCPU account (%d cores: at most %d CPU-ms per second):\n", cores, cores*1000)
			header = true
		}
		bound := float64(cores) * 1000 / r.CPUms
		fmt.Printf("%-10s %4d clients%s: %.1f CPU-ms per request -> at most %.0f requests/s here, measured %.1f (%.0f%%)",
			r.Target, r.Clients, roundLabel(r.Round, perRound), r.CPUms, bound, r.Throughput, 100*r.Throughput/bound)
		if s := r.Stages; s != nil {
			fmt.Printf("; per image: preprocess %.1f ms (one thread), encoder %.1f ms of batch time (%.1f GFLOP/s), decoder %.1f ms of batch time",
				s.Preprocess, s.Encode, encoderGFLOP*1000/max(s.Encode, 1e-9), s.Decode)
		}
		fmt.Println()
	}
}
