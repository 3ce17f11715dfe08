// Package check checks the container images (docker/), the Compose file and the
// Kubernetes manifests (deploy/k8s/) without a container engine or a cluster: each file
// is read by the parser its real consumer uses (BuildKit's Dockerfile parser, compose-go's
// loader, the Kubernetes API types with strict decoding) and checked against the rules in
// docs/deploy.md and against the server's own configuration (package config), so the
// manifests and the server cannot drift apart. The package has only tests, in a module of
// its own so that the product's go.mod does not carry those parsers (`make test-deploy`).
package check
