// How fast this CPU multiplies bfloat16 against float32 (bf16rate.c): what
// decides whether precision auto runs the encoder in bfloat16.

// cap_bf16_dot_speedup returns how many more multiply-adds a second AVX512-BF16's
// dot product (vdpbf16ps, two bfloat16 products into each float32 lane) does
// than float32 FMAs (vfmadd231ps), both on 512-bit registers, one thread; 0
// where the compiler cannot emit the instruction. Call it only on a CPU with
// AVX512-BF16. It takes about a millisecond.
double cap_bf16_dot_speedup(void);
