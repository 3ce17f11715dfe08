// Package gpucheck holds the GPU machine's checks, built into the GPU bundle as a
// cuda-tagged test binary (`make gpu-bundle`, run by scripts/gpu-check.sh): the
// parity of the CUDA pipeline with the CPU on real photos, for every model it
// loads (TestParity), and the throughput benchmarks of the encoder and of one
// model's decoder, whatever its architecture (BenchmarkEncode, BenchmarkDecode,
// BenchmarkTrain). Its untagged tests check gpu-check.sh's model lookup (a lean
// bundle uses the checkout's models) and TestParity's judgement (compare,
// untagged so that it is tested without a GPU). It has no code of its own
// outside the tests; see gpu/README.md.
package gpucheck
