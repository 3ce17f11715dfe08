// Package gpucheck holds the GPU machine's checks, built into the GPU bundle as a
// cuda-tagged test binary (`make gpu-bundle`, run by scripts/gpu-check.sh): the
// parity of the CUDA pipeline with the CPU on real photos (TestParity) and the
// throughput benchmarks (BenchmarkEncode, BenchmarkDecode, BenchmarkTrain). It
// has no code of its own outside the tests; see gpu/README.md.
package gpucheck
