// Package models carries into the binary the shipped artifacts that every
// caption model uses, so that an installed binary, a container or a GPU bundle
// needs no file beside it for them: the lone-object probe
// (lone-object/MODEL.md). The caption models themselves are folders read at
// run time (config model, server.models).
package models

import _ "embed"

// LoneObjectProbe is lone-object/probe.json: pipeline.LoneProbe as JSON.
//
//go:embed lone-object/probe.json
var LoneObjectProbe []byte
