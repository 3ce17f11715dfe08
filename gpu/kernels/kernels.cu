// kernels.cu is the one translation unit that `make ptx` compiles to a PTX module
// per GPU architecture (and that gpu/cudaemu compiles as host C): one module to load.
#include "elementwise.cu"
#include "conv.cu"
#include "rows.cu"
#include "attention.cu"
