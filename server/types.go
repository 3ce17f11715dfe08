package server

import "github.com/captioner/captioner/pipeline"

// The model's vocabulary types are the pipeline's; *pipeline.Pipeline is the
// production Model.
type (
	Options     = pipeline.Options
	Alternative = pipeline.Alternative
	Result      = pipeline.Result
	Info        = pipeline.Info
)

var (
	_ Model  = (*pipeline.Pipeline)(nil)
	_ Lister = (*pipeline.Pipeline)(nil)
)
