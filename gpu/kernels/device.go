package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/captioner/captioner/gpu"
)

// Device is a gpu.Device that runs this package's kernels through a Driver.
type Device struct {
	drv  Driver
	sigs []Signature
	k    kernelIndex

	// scratch is device memory for im2col columns, integer inputs, reduction
	// partials and top-k results; it grows and is never shrunk.
	scratch      Ptr
	scratchBytes int

	// err is the first allocation failure; Sync and Download report it and no
	// kernel is launched after it (its pointers would be invalid).
	err error

	args     [24]uint64 // launch arguments, reused
	partials []float64  // SumSquares partials on the host, maxGrid
}

// kernelIndex holds the index of each kernel in Device.sigs.
type kernelIndex struct {
	biasAct, actBackward, colSum, add, mul, axpy, scale, dropout, adamw,
	depthwiseBackwardInput, depthwiseBackwardWeight,
	lstmForward, lstmBackward, embeddingForward, embeddingBackward,
	im2col, depthwiseConv, globalAvgPool, sumSquares, softmax, softmaxBackward, crossEntropy, topk,
	attentionScores, attentionScoresBackward, attentionExp int
}

const (
	// maxGrid caps the blocks of a grid-stride launch: enough to fill any GPU,
	// few enough that the emulator does not start millions of threads.
	maxGrid = 4096
	// maxGridY is the CUDA limit on gridDim.y.
	maxGridY = 65535
	// colSumRows is how many rows one thread of col_sum adds up (at least).
	colSumRows = 64
	// maxElems bounds every array a kernel indexes with a 32-bit int, with
	// room for the grid-stride step so the loop index cannot overflow.
	maxElems = math.MaxInt32 - maxGrid*Block
)

// New returns a Device on drv, which was made for sigs (from Signatures).
func New(drv Driver, sigs []Signature) (*Device, error) {
	d := &Device{drv: drv, sigs: sigs, partials: make([]float64, maxGrid)}
	index := make(map[string]int, len(sigs))
	for i, s := range sigs {
		index[s.Name] = i
	}
	var missing []string
	find := func(name string) int {
		i, ok := index[name]
		if !ok {
			missing = append(missing, name)
		}
		return i
	}
	d.k = kernelIndex{
		biasAct: find("bias_act"), actBackward: find("act_backward"), colSum: find("col_sum"),
		add: find("add"), mul: find("mul"), axpy: find("axpy"), scale: find("scale"),
		dropout: find("dropout"), adamw: find("adamw"),
		depthwiseBackwardInput: find("depthwise_backward_input"), depthwiseBackwardWeight: find("depthwise_backward_weight"),
		lstmForward: find("lstm_forward"), lstmBackward: find("lstm_backward"),
		embeddingForward: find("embedding_forward"), embeddingBackward: find("embedding_backward"),
		im2col: find("im2col"), depthwiseConv: find("depthwise_conv"), globalAvgPool: find("global_avg_pool"),
		sumSquares: find("sum_squares"), softmax: find("softmax"), softmaxBackward: find("softmax_backward"), crossEntropy: find("cross_entropy"),
		topk: find("topk"), attentionScores: find("attention_scores"), attentionScoresBackward: find("attention_scores_backward"),
		attentionExp: find("attention_exp"),
	}
	if missing != nil {
		return nil, fmt.Errorf("gpu: kernel module lacks %v: rebuild it with `make ptx`", missing)
	}
	return d, nil
}

// buf is a Device's gpu.Buf.
type buf struct {
	dev  *Device
	ptr  Ptr
	n    int
	root bool // from Alloc, not Slice
}

func (b *buf) Len() int { return b.n }

func (b *buf) Slice(off, n int) gpu.Buf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("gpu: Slice(%d, %d) of a buffer of %d elements", off, n, b.n))
	}
	return &buf{dev: b.dev, ptr: b.ptr + Ptr(4*off), n: n}
}

// ptr returns b's address after checking that b belongs to d and, when n >= 0,
// has exactly n elements.
func (d *Device) ptr(b gpu.Buf, n int, what string) Ptr {
	bb, ok := b.(*buf)
	if !ok || bb == nil || bb.dev != d {
		panic(fmt.Sprintf("gpu: %s is not a buffer of this device (%s)", what, d.Name()))
	}
	if n >= 0 && bb.n != n {
		panic(fmt.Sprintf("gpu: %s has %d elements, want %d", what, bb.n, n))
	}
	return bb.ptr
}

// optPtr is ptr for optional buffers: nil gives the null pointer.
func (d *Device) optPtr(b gpu.Buf, n int, what string) Ptr {
	if b == nil {
		return 0
	}
	return d.ptr(b, n, what)
}

// fail records the first runtime failure.
func (d *Device) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// arg is one kernel argument; see Driver.Launch.
type arg struct {
	kind Kind
	bits uint64
}

func argP(p Ptr) arg      { return arg{Pointer, uint64(p)} }
func argF(f float32) arg  { return arg{Float, uint64(math.Float32bits(f))} }
func argU64(u uint64) arg { return arg{Uint64, u} }
func argI(i int) arg {
	if i < math.MinInt32 || i > math.MaxInt32 {
		panic(fmt.Sprintf("gpu: %d does not fit the kernels' 32-bit int", i))
	}
	return arg{Int, uint64(uint32(int32(i)))}
}

// launch checks args against kernel k's declared parameters and launches it.
func (d *Device) launch(k, gridX, gridY, block int, args ...arg) {
	sig := &d.sigs[k]
	if len(args) != len(sig.Params) {
		panic(fmt.Sprintf("gpu: kernel %s takes %d arguments, launched with %d", sig.Name, len(sig.Params), len(args)))
	}
	for i, a := range args {
		if a.kind != sig.Params[i].Kind {
			panic(fmt.Sprintf("gpu: kernel %s: argument %d (%s %s) launched as kind %c", sig.Name, i, sig.Params[i].Type, sig.Params[i].Name, a.kind))
		}
		d.args[i] = a.bits
	}
	if d.err != nil {
		return
	}
	d.drv.Launch(k, gridX, gridY, block, d.args[:len(args)])
}

// checkElems panics when n elements cannot be indexed by the kernels.
func checkElems(n int) {
	if n > maxElems {
		panic(fmt.Sprintf("gpu: %d elements exceed the CUDA kernels' limit of %d per array", n, maxElems))
	}
}

// elemGrid is the grid of a grid-stride launch over n > 0 elements.
func elemGrid(n int) int {
	checkElems(n)
	return min((n+Block-1)/Block, maxGrid)
}

// launchElems launches a grid-stride kernel over n elements; n == 0 launches nothing.
func (d *Device) launchElems(k, n int, args ...arg) {
	if n == 0 {
		return
	}
	d.launch(k, elemGrid(n), 1, Block, args...)
}

// rowBlock is the block size of a row-per-block kernel: the smallest power of
// two covering cols, from one warp up to Block.
func rowBlock(cols int) int {
	b := 32
	for b < cols && b < Block {
		b *= 2
	}
	return b
}

// launchRows launches a row-per-block kernel over rows rows of cols elements.
func (d *Device) launchRows(k, rows, cols int, args ...arg) {
	if rows == 0 {
		return
	}
	checkElems(rows * cols)
	d.launch(k, min(rows, maxGrid), 1, rowBlock(cols), args...) // kernels loop over further rows
}

// scratchPtr returns device scratch memory of at least bytes, valid until the
// next call.
func (d *Device) scratchPtr(bytes int) Ptr {
	if bytes <= d.scratchBytes {
		return d.scratch
	}
	if d.scratch != 0 {
		d.drv.Free(d.scratch)
		d.scratch, d.scratchBytes = 0, 0
	}
	size := max(bytes, 2*d.scratchBytes, 1<<20)
	p, err := d.drv.Alloc(size)
	if err != nil {
		d.fail(fmt.Errorf("gpu: allocating %d bytes of scratch memory: %w", size, err))
		return 0
	}
	d.scratch, d.scratchBytes = p, size
	return p
}

// uploadInts copies ids to device scratch at byte offset off and returns its address.
func (d *Device) uploadInts(ids []int32, off int) Ptr {
	p := d.scratchPtr(off + 4*len(ids))
	if p == 0 || len(ids) == 0 {
		return p + Ptr(off)
	}
	d.drv.HtoD(p+Ptr(off), unsafe.Pointer(&ids[0]), 4*len(ids))
	return p + Ptr(off)
}

// Name implements gpu.Device.
func (d *Device) Name() string { return d.drv.Name() }

// Alloc implements gpu.Device. An allocation failure is reported by Sync and
// Download, as the interface asks of runtime failures.
func (d *Device) Alloc(n int) gpu.Buf {
	if n < 0 {
		panic(fmt.Sprintf("gpu: Alloc(%d)", n))
	}
	b := &buf{dev: d, n: n, root: true}
	if n == 0 {
		return b
	}
	p, err := d.drv.Alloc(4 * n)
	if err != nil {
		d.fail(fmt.Errorf("gpu: allocating %d floats on %s: %w", n, d.Name(), err))
		return b
	}
	b.ptr = p
	return b
}

// Free implements gpu.Device.
func (d *Device) Free(b gpu.Buf) {
	p := d.ptr(b, -1, "Free's buffer")
	if !b.(*buf).root {
		panic("gpu: Free of a Slice view; free the buffer it came from")
	}
	if p != 0 {
		d.drv.Free(p)
	}
}

// Upload implements gpu.Device.
func (d *Device) Upload(dst gpu.Buf, src []float32) {
	p := d.ptr(dst, len(src), "Upload's destination")
	if len(src) == 0 || d.err != nil {
		return
	}
	d.drv.HtoD(p, unsafe.Pointer(&src[0]), 4*len(src))
}

// Download implements gpu.Device.
func (d *Device) Download(dst []float32, src gpu.Buf) error {
	p := d.ptr(src, len(dst), "Download's source")
	if d.err != nil {
		return d.err
	}
	if len(dst) == 0 {
		return d.drv.Sync()
	}
	return d.drv.DtoH(unsafe.Pointer(&dst[0]), p, 4*len(dst))
}

// Copy implements gpu.Device.
func (d *Device) Copy(dst, src gpu.Buf) {
	n := src.Len()
	pd, ps := d.ptr(dst, n, "Copy's destination"), d.ptr(src, n, "Copy's source")
	if n > 0 && d.err == nil {
		d.drv.DtoD(pd, ps, 4*n)
	}
}

// Zero implements gpu.Device.
func (d *Device) Zero(b gpu.Buf) {
	p := d.ptr(b, -1, "Zero's buffer")
	if b.Len() > 0 && d.err == nil {
		d.drv.Zero(p, 4*b.Len())
	}
}

// Sync implements gpu.Device.
func (d *Device) Sync() error {
	if d.err != nil {
		return d.err
	}
	return d.drv.Sync()
}

// ChunkFloats implements gpu.Device: whole batches, up to what the kernels'
// 32-bit indices reach. A chunk of one image (the CPU's 112x112 layers) would
// make as many small launches as the batch has images.
func (d *Device) ChunkFloats() int { return maxElems }

// Close implements gpu.Device.
func (d *Device) Close() error {
	if d.scratch != 0 {
		d.drv.Free(d.scratch)
		d.scratch, d.scratchBytes = 0, 0
	}
	return d.drv.Close()
}

// spans panics unless b has at least need elements and returns its address.
func (d *Device) spans(b gpu.Buf, need int, what string) Ptr {
	p := d.ptr(b, -1, what)
	if b.Len() < need {
		panic(fmt.Sprintf("gpu: %s has %d elements, the shape needs %d", what, b.Len(), need))
	}
	return p
}

// Gemm implements gpu.Device.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a gpu.Buf, lda int, b gpu.Buf, ldb int, beta float32, c gpu.Buf, ldc int) {
	d.GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// GemmStridedBatched implements gpu.Device: one Sgemm call for the whole batch
// (cublasSgemmStridedBatched on a GPU, one launch rather than batch).
func (d *Device) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a gpu.Buf, lda, strideA int, b gpu.Buf, ldb, strideB int, beta float32, c gpu.Buf, ldc, strideC int, batch int) {
	la, lb, lc := gpu.GemmSpans(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch)
	pa, pb, pc := d.spans(a, la, "Gemm's A"), d.spans(b, lb, "Gemm's B"), d.spans(c, lc, "Gemm's C")
	if m == 0 || n == 0 || batch == 0 || d.err != nil {
		return
	}
	d.drv.Sgemm(transA, transB, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, batch)
}

// convBufs checks the buffers of a convolution and returns their addresses.
func (d *Device) convBufs(out, in, weight, bias gpu.Buf, p gpu.ConvParams, weightLen int, what string) (po, pi, pw, pb Ptr) {
	if p.N < 0 || p.H <= 0 || p.W <= 0 || p.C <= 0 || p.OC <= 0 || p.KH <= 0 || p.KW <= 0 ||
		p.StrideH <= 0 || p.StrideW <= 0 || p.PadTop < 0 || p.PadLeft < 0 || p.OH <= 0 || p.OW <= 0 {
		panic(fmt.Sprintf("gpu: %s: invalid parameters %+v", what, p))
	}
	po = d.ptr(out, p.N*p.OH*p.OW*p.OC, what+"'s out")
	pi = d.ptr(in, p.N*p.H*p.W*p.C, what+"'s in")
	pw = d.ptr(weight, weightLen, what+"'s weight")
	pb = d.optPtr(bias, p.OC, what+"'s bias")
	return po, pi, pw, pb
}

// Conv2D implements gpu.Device: im2col into scratch, then one GEMM against the
// OHWI weight, then bias and activation in place. A 1x1 stride-1 unpadded
// convolution skips im2col: the NHWC input already is the column matrix.
func (d *Device) Conv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	kdim := p.KH * p.KW * p.C
	po, pi, pw, pb := d.convBufs(out, in, weight, bias, p, p.OC*kdim, "Conv2D")
	rows := p.N * p.OH * p.OW // rows of the column matrix and of out
	if rows == 0 {
		return
	}
	cols := pi
	if p.KH != 1 || p.KW != 1 || p.StrideH != 1 || p.StrideW != 1 || p.PadTop != 0 || p.PadLeft != 0 || p.OH != p.H || p.OW != p.W {
		n := rows * kdim
		checkElems(n)
		cols = d.scratchPtr(4 * n)
		d.launchElems(d.k.im2col, n, argP(cols), argP(pi), argI(p.N), argI(p.H), argI(p.W), argI(p.C),
			argI(p.KH), argI(p.KW), argI(p.StrideH), argI(p.StrideW), argI(p.PadTop), argI(p.PadLeft), argI(p.OH), argI(p.OW))
	}
	if d.err != nil {
		return
	}
	// out (rows, OC) = cols (rows, kdim) * weight^T, weight (OC, kdim).
	d.drv.Sgemm(false, true, rows, p.OC, kdim, 1, cols, kdim, 0, pw, kdim, 0, 0, po, p.OC, 0, 1)
	d.launchElems(d.k.biasAct, rows*p.OC, argP(po), argP(po), argP(pb), argI(rows), argI(p.OC), argI(int(act)))
}

// DepthwiseConv2D implements gpu.Device.
func (d *Device) DepthwiseConv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	if p.OC != p.C {
		panic(fmt.Sprintf("gpu: DepthwiseConv2D with OC %d != C %d (channel multiplier 1 only)", p.OC, p.C))
	}
	po, pi, pw, pb := d.convBufs(out, in, weight, bias, p, p.KH*p.KW*p.C, "DepthwiseConv2D")
	checkElems(p.N * p.H * p.W * p.C)
	d.launchElems(d.k.depthwiseConv, p.N*p.OH*p.OW*p.C, argP(po), argP(pi), argP(pw), argP(pb),
		argI(p.N), argI(p.H), argI(p.W), argI(p.C), argI(p.KH), argI(p.KW), argI(p.StrideH), argI(p.StrideW),
		argI(p.PadTop), argI(p.PadLeft), argI(p.OH), argI(p.OW), argI(int(act)))
}

// DepthwiseConv2DBackward implements gpu.Device: depthwise_backward_input for
// din, depthwise_backward_weight for dweight, col_sum of dout for dbias.
func (d *Device) DepthwiseConv2DBackward(din, dweight, dbias, dout, in, weight gpu.Buf, p gpu.ConvParams) {
	if p.OC != p.C {
		panic(fmt.Sprintf("gpu: DepthwiseConv2DBackward with OC %d != C %d (channel multiplier 1 only)", p.OC, p.C))
	}
	taps := p.KH * p.KW
	pg, pi, pw, _ := d.convBufs(dout, in, weight, nil, p, taps*p.C, "DepthwiseConv2DBackward")
	pdi := d.optPtr(din, p.N*p.H*p.W*p.C, "DepthwiseConv2DBackward's din")
	pdw := d.optPtr(dweight, taps*p.C, "DepthwiseConv2DBackward's dweight")
	pdb := d.optPtr(dbias, p.C, "DepthwiseConv2DBackward's dbias")
	pixels := p.N * p.OH * p.OW
	checkElems(p.N * p.H * p.W * p.C)
	checkElems(pixels * p.C)
	geometry := []arg{argI(p.N), argI(p.H), argI(p.W), argI(p.C), argI(p.KH), argI(p.KW), argI(p.StrideH), argI(p.StrideW),
		argI(p.PadTop), argI(p.PadLeft), argI(p.OH), argI(p.OW)}
	if pdi != 0 {
		d.launchElems(d.k.depthwiseBackwardInput, p.N*p.H*p.W*p.C, append([]arg{argP(pdi), argP(pg), argP(pw)}, geometry...)...)
	}
	if pdw != 0 && pixels > 0 {
		per := max(colSumRows, (pixels+maxGridY-1)/maxGridY)
		d.launch(d.k.depthwiseBackwardWeight, (taps*p.C+Block-1)/Block, (pixels+per-1)/per, Block,
			append(append([]arg{argP(pdw), argP(pg), argP(pi)}, geometry...), argI(per))...)
	}
	if pdb != 0 {
		d.addColSums(pdb, pg, pixels, p.C)
	}
}

// GlobalAvgPool implements gpu.Device.
func (d *Device) GlobalAvgPool(out, in gpu.Buf, n, hw, c int) {
	po, pi := d.ptr(out, n*c, "GlobalAvgPool's out"), d.ptr(in, n*hw*c, "GlobalAvgPool's in")
	if hw <= 0 && n*c > 0 {
		panic(fmt.Sprintf("gpu: GlobalAvgPool over %d positions", hw))
	}
	checkElems(n * hw * c)
	d.launchElems(d.k.globalAvgPool, n*c, argP(po), argP(pi), argI(n), argI(hw), argI(c))
}

// BiasAct implements gpu.Device.
func (d *Device) BiasAct(out, x, bias gpu.Buf, rows, cols int, act gpu.Act) {
	po, px := d.ptr(out, rows*cols, "BiasAct's out"), d.ptr(x, rows*cols, "BiasAct's x")
	pb := d.optPtr(bias, cols, "BiasAct's bias")
	d.launchElems(d.k.biasAct, rows*cols, argP(po), argP(px), argP(pb), argI(rows), argI(cols), argI(int(act)))
}

// BiasActBackward implements gpu.Device: act_backward, then col_sum into dbias.
func (d *Device) BiasActBackward(dx, dbias, dout, y gpu.Buf, rows, cols int, act gpu.Act) {
	n := rows * cols
	pdx, pdo, py := d.ptr(dx, n, "BiasActBackward's dx"), d.ptr(dout, n, "BiasActBackward's dout"), d.ptr(y, n, "BiasActBackward's y")
	pdb := d.optPtr(dbias, cols, "BiasActBackward's dbias")
	d.launchElems(d.k.actBackward, n, argP(pdx), argP(pdo), argP(py), argI(n), argI(int(act)))
	if pdb != 0 {
		d.addColSums(pdb, pdx, rows, cols)
	}
}

// addColSums adds the column sums of x (rows, cols) into sum (cols) with col_sum.
func (d *Device) addColSums(sum, x Ptr, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	per := max(colSumRows, (rows+maxGridY-1)/maxGridY)
	d.launch(d.k.colSum, (cols+Block-1)/Block, (rows+per-1)/per, Block,
		argP(sum), argP(x), argI(rows), argI(cols), argI(per))
}

// binary checks the three equal-length buffers of an elementwise operation.
func (d *Device) binary(out, a, b gpu.Buf, what string) (po, pa, pb Ptr, n int) {
	n = out.Len()
	return d.ptr(out, n, what+"'s out"), d.ptr(a, n, what+"'s a"), d.ptr(b, n, what+"'s b"), n
}

// Add implements gpu.Device.
func (d *Device) Add(out, a, b gpu.Buf) {
	po, pa, pb, n := d.binary(out, a, b, "Add")
	d.launchElems(d.k.add, n, argP(po), argP(pa), argP(pb), argI(n))
}

// Mul implements gpu.Device.
func (d *Device) Mul(out, a, b gpu.Buf) {
	po, pa, pb, n := d.binary(out, a, b, "Mul")
	d.launchElems(d.k.mul, n, argP(po), argP(pa), argP(pb), argI(n))
}

// Axpy implements gpu.Device.
func (d *Device) Axpy(y, x gpu.Buf, alpha float32) {
	n := y.Len()
	py, px := d.ptr(y, n, "Axpy's y"), d.ptr(x, n, "Axpy's x")
	d.launchElems(d.k.axpy, n, argP(py), argP(px), argF(alpha), argI(n))
}

// Scale implements gpu.Device.
func (d *Device) Scale(x gpu.Buf, alpha float32) {
	n := x.Len()
	px := d.ptr(x, n, "Scale's x")
	d.launchElems(d.k.scale, n, argP(px), argF(alpha), argI(n))
}

// SumSquares implements gpu.Device: one double partial per block, added on the host.
func (d *Device) SumSquares(x gpu.Buf) (float64, error) {
	n := x.Len()
	px := d.ptr(x, n, "SumSquares' x")
	if n == 0 {
		return 0, d.Sync()
	}
	grid := elemGrid(n)
	part := d.scratchPtr(8 * grid)
	d.launch(d.k.sumSquares, grid, 1, Block, argP(part), argP(px), argI(n))
	if d.err != nil {
		return 0, d.err
	}
	if err := d.drv.DtoH(unsafe.Pointer(&d.partials[0]), part, 8*grid); err != nil {
		return 0, err
	}
	s := 0.0
	for _, v := range d.partials[:grid] {
		s += v
	}
	return s, nil
}

// LSTMCellForward implements gpu.Device.
func (d *Device) LSTMCellForward(h, c, act, gates, cPrev gpu.Buf, batch, hidden int) {
	n := batch * hidden
	ph, pc, pa := d.ptr(h, n, "LSTMCellForward's h"), d.ptr(c, n, "LSTMCellForward's c"), d.ptr(act, 4*n, "LSTMCellForward's act")
	pg, pp := d.ptr(gates, 4*n, "LSTMCellForward's gates"), d.ptr(cPrev, n, "LSTMCellForward's cPrev")
	checkElems(4 * n)
	d.launchElems(d.k.lstmForward, n, argP(ph), argP(pc), argP(pa), argP(pg), argP(pp), argI(batch), argI(hidden))
}

// LSTMCellBackward implements gpu.Device.
func (d *Device) LSTMCellBackward(dgates, dcPrev, dh, dc, act, c, cPrev gpu.Buf, batch, hidden int) {
	n := batch * hidden
	pdg, pdp := d.ptr(dgates, 4*n, "LSTMCellBackward's dgates"), d.ptr(dcPrev, n, "LSTMCellBackward's dcPrev")
	pdh, pdc := d.ptr(dh, n, "LSTMCellBackward's dh"), d.ptr(dc, n, "LSTMCellBackward's dc")
	pa, pc, pp := d.ptr(act, 4*n, "LSTMCellBackward's act"), d.ptr(c, n, "LSTMCellBackward's c"), d.ptr(cPrev, n, "LSTMCellBackward's cPrev")
	checkElems(4 * n)
	d.launchElems(d.k.lstmBackward, n, argP(pdg), argP(pdp), argP(pdh), argP(pdc), argP(pa), argP(pc), argP(pp), argI(batch), argI(hidden))
}

// softmax runs the softmax kernel; logp selects log-softmax.
func (d *Device) softmax(out, x gpu.Buf, rows, cols int, logp int, what string) {
	po, px := d.ptr(out, rows*cols, what+"'s out"), d.ptr(x, rows*cols, what+"'s x")
	if cols <= 0 && rows > 0 {
		panic(fmt.Sprintf("gpu: %s of rows with %d columns", what, cols))
	}
	d.launchRows(d.k.softmax, rows, cols, argP(po), argP(px), argI(rows), argI(cols), argI(logp))
}

// Softmax implements gpu.Device.
func (d *Device) Softmax(out, x gpu.Buf, rows, cols int) { d.softmax(out, x, rows, cols, 0, "Softmax") }

// LogSoftmax implements gpu.Device.
func (d *Device) LogSoftmax(out, x gpu.Buf, rows, cols int) {
	d.softmax(out, x, rows, cols, 1, "LogSoftmax")
}

// SoftmaxBackward implements gpu.Device.
func (d *Device) SoftmaxBackward(dx, dy, y gpu.Buf, rows, cols int) {
	pdx, pdy, py := d.ptr(dx, rows*cols, "SoftmaxBackward's dx"), d.ptr(dy, rows*cols, "SoftmaxBackward's dy"), d.ptr(y, rows*cols, "SoftmaxBackward's y")
	if cols <= 0 && rows > 0 {
		panic(fmt.Sprintf("gpu: SoftmaxBackward of rows with %d columns", cols))
	}
	d.launchRows(d.k.softmaxBackward, rows, cols, argP(pdx), argP(pdy), argP(py), argI(rows), argI(cols))
}

// CrossEntropy implements gpu.Device.
func (d *Device) CrossEntropy(loss, dlogits, logits gpu.Buf, targets []int32, rows, cols int, gradScale float32) {
	pl, px := d.ptr(loss, rows, "CrossEntropy's loss"), d.ptr(logits, rows*cols, "CrossEntropy's logits")
	pd := d.optPtr(dlogits, rows*cols, "CrossEntropy's dlogits")
	if len(targets) != rows {
		panic(fmt.Sprintf("gpu: CrossEntropy with %d targets for %d rows", len(targets), rows))
	}
	for r, t := range targets {
		if int(t) >= cols {
			panic(fmt.Sprintf("gpu: CrossEntropy target %d of row %d is out of range [0, %d)", t, r, cols))
		}
	}
	if rows == 0 {
		return
	}
	pt := d.uploadInts(targets, 0)
	d.launchRows(d.k.crossEntropy, rows, cols, argP(pl), argP(pd), argP(px), argP(pt), argI(rows), argI(cols), argF(gradScale))
}

// embedding checks an embedding call and uploads ids.
func (d *Device) embedding(out, table gpu.Buf, ids []int32, dim int, what string) (po, pt, pid Ptr) {
	if dim <= 0 || table.Len()%dim != 0 {
		panic(fmt.Sprintf("gpu: %s: table of %d elements is not (vocab, %d)", what, table.Len(), dim))
	}
	vocab := table.Len() / dim
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			panic(fmt.Sprintf("gpu: %s: id %d at %d is out of range [0, %d)", what, id, i, vocab))
		}
	}
	po, pt = d.ptr(out, len(ids)*dim, what+"'s rows"), d.ptr(table, -1, what+"'s table")
	checkElems(table.Len())
	checkElems(len(ids) * dim)
	return po, pt, d.uploadInts(ids, 0)
}

// EmbeddingForward implements gpu.Device.
func (d *Device) EmbeddingForward(out, table gpu.Buf, ids []int32, dim int) {
	po, pt, pid := d.embedding(out, table, ids, dim, "EmbeddingForward")
	d.launchElems(d.k.embeddingForward, len(ids)*dim, argP(po), argP(pt), argP(pid), argI(len(ids)), argI(dim))
}

// EmbeddingBackward implements gpu.Device.
func (d *Device) EmbeddingBackward(dtable, dout gpu.Buf, ids []int32, dim int) {
	po, pt, pid := d.embedding(dout, dtable, ids, dim, "EmbeddingBackward")
	d.launchElems(d.k.embeddingBackward, len(ids)*dim, argP(pt), argP(po), argP(pid), argI(len(ids)), argI(dim))
}

// Dropout implements gpu.Device.
func (d *Device) Dropout(out, mask, x gpu.Buf, p float32, seed uint64) {
	if !(p >= 0 && p < 1) {
		panic(fmt.Sprintf("gpu: Dropout probability %v outside [0, 1)", p))
	}
	n := x.Len()
	po, pm, px := d.ptr(out, n, "Dropout's out"), d.ptr(mask, n, "Dropout's mask"), d.ptr(x, n, "Dropout's x")
	keep := 1 / (1 - p)
	d.launchElems(d.k.dropout, n, argP(po), argP(pm), argP(px), argI(n), argF(p), argF(keep), argU64(seed))
}

// AdamW implements gpu.Device.
func (d *Device) AdamW(param, grad, m, v gpu.Buf, lr, beta1, beta2, eps, weightDecay float32, step int) {
	if step < 1 {
		panic(fmt.Sprintf("gpu: AdamW step %d; steps count from 1", step))
	}
	n := param.Len()
	pp, pg := d.ptr(param, n, "AdamW's param"), d.ptr(grad, n, "AdamW's grad")
	pm, pv := d.ptr(m, n, "AdamW's m"), d.ptr(v, n, "AdamW's v")
	bc1 := float32(1 / (1 - math.Pow(float64(beta1), float64(step))))
	bc2 := float32(1 / (1 - math.Pow(float64(beta2), float64(step))))
	d.launchElems(d.k.adamw, n, argP(pp), argP(pg), argP(pm), argP(pv), argI(n),
		argF(lr), argF(beta1), argF(beta2), argF(eps), argF(weightDecay), argF(bc1), argF(bc2))
}

// topk runs the topk kernel and downloads its results; val may be nil (Argmax).
func (d *Device) topk(idx []int32, val []float32, x gpu.Buf, rows, cols, k int, what string) error {
	px := d.ptr(x, rows*cols, what+"'s x")
	if k < 1 || k > cols {
		panic(fmt.Sprintf("gpu: %s of k=%d over %d columns", what, k, cols))
	}
	if len(idx) != rows*k || (val != nil && len(val) != rows*k) {
		panic(fmt.Sprintf("gpu: %s results have %d indices and %d values, want %d each", what, len(idx), len(val), rows*k))
	}
	if rows == 0 {
		return d.Sync()
	}
	n := rows * k
	base := d.scratchPtr(8 * n)
	pidx, pval := base, base+Ptr(4*n)
	d.launchRows(d.k.topk, rows, cols, argP(pidx), argP(pval), argP(px), argI(rows), argI(cols), argI(k))
	if d.err != nil {
		return d.err
	}
	if err := d.drv.DtoH(unsafe.Pointer(&idx[0]), pidx, 4*n); err != nil {
		return err
	}
	if val != nil {
		return d.drv.DtoH(unsafe.Pointer(&val[0]), pval, 4*n)
	}
	return nil
}

// Argmax implements gpu.Device as top-1.
func (d *Device) Argmax(out []int32, x gpu.Buf, rows, cols int) error {
	return d.topk(out, nil, x, rows, cols, 1, "Argmax")
}

// TopK implements gpu.Device.
func (d *Device) TopK(idx []int32, val []float32, x gpu.Buf, rows, cols, k int) error {
	if val == nil {
		panic("gpu: TopK needs a values slice")
	}
	return d.topk(idx, val, x, rows, cols, k, "TopK")
}

var _ gpu.Device = (*Device)(nil)

// attentionImages checks AttentionScores' sizes and returns the number of images.
func attentionImages(op string, rows, perImage, regions, dim int) int {
	if rows < 0 || perImage < 1 || regions < 1 || dim < 1 || rows%perImage != 0 {
		panic(fmt.Sprintf("gpu: %s of %d rows, %d per image, %d regions of %d: want rows a multiple of perImage and every size positive", op, rows, perImage, regions, dim))
	}
	checkElems(rows * regions * dim)
	return rows / perImage
}

// AttentionScores implements gpu.Device.
func (d *Device) AttentionScores(scores, e, pf, q, v gpu.Buf, rows, perImage, regions, dim int) {
	B := attentionImages("AttentionScores", rows, perImage, regions, dim)
	ps, pe := d.ptr(scores, rows*regions, "AttentionScores' scores"), d.optPtr(e, rows*regions*dim, "AttentionScores' e")
	pp, pq, pv := d.ptr(pf, B*regions*dim, "AttentionScores' pf"), d.ptr(q, rows*dim, "AttentionScores' q"), d.ptr(v, dim, "AttentionScores' v")
	d.launchRows(d.k.attentionScores, rows*regions, dim, argP(ps), argP(pe), argP(pp), argP(pq), argP(pv),
		argI(rows), argI(perImage), argI(regions), argI(dim), argI(0), argF(gpu.AttentionExpClamp))
}

// AttentionExp implements gpu.Device.
func (d *Device) AttentionExp(ep, pf gpu.Buf, n int) {
	if n < 0 {
		panic(fmt.Sprintf("gpu: AttentionExp of %d elements", n))
	}
	po, px := d.ptr(ep, n, "AttentionExp's ep"), d.ptr(pf, n, "AttentionExp's pf")
	d.launchElems(d.k.attentionExp, n, argP(po), argP(px), argI(n), argF(gpu.AttentionExpClamp))
}

// AttentionScoresExp implements gpu.Device.
func (d *Device) AttentionScoresExp(scores, ep, q, v gpu.Buf, rows, perImage, regions, dim int) {
	B := attentionImages("AttentionScoresExp", rows, perImage, regions, dim)
	ps, pp := d.ptr(scores, rows*regions, "AttentionScoresExp's scores"), d.ptr(ep, B*regions*dim, "AttentionScoresExp's ep")
	pq, pv := d.ptr(q, rows*dim, "AttentionScoresExp's q"), d.ptr(v, dim, "AttentionScoresExp's v")
	d.launchRows(d.k.attentionScores, rows*regions, dim, argP(ps), argP(0), argP(pp), argP(pq), argP(pv),
		argI(rows), argI(perImage), argI(regions), argI(dim), argI(1), argF(gpu.AttentionExpClamp))
}

// AttentionScoresBackward implements gpu.Device.
func (d *Device) AttentionScoresBackward(dpf, dq, dscores, e, v gpu.Buf, rows, perImage, regions, dim int) {
	B := attentionImages("AttentionScoresBackward", rows, perImage, regions, dim)
	pdp, pdq := d.ptr(dpf, B*regions*dim, "AttentionScoresBackward's dpf"), d.ptr(dq, rows*dim, "AttentionScoresBackward's dq")
	pds, pe, pv := d.ptr(dscores, rows*regions, "AttentionScoresBackward's dscores"), d.ptr(e, rows*regions*dim, "AttentionScoresBackward's e"), d.ptr(v, dim, "AttentionScoresBackward's v")
	d.launchElems(d.k.attentionScoresBackward, B*dim, argP(pdp), argP(pdq), argP(pds), argP(pe), argP(pv),
		argI(B), argI(perImage), argI(regions), argI(dim))
}
