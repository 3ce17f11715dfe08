package check

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu/selector"
)

// images maps each image the project builds to its Dockerfile; the Compose file, the
// Kubernetes manifests and docs/deploy.md use these names.
var images = map[string]string{
	"captioner:cpu":  "docker/Dockerfile",
	"captioner:cuda": "docker/Dockerfile.cuda",
}

// binDir is where the images put the binaries: on PATH, the entry point's folder, where
// the CPU binary looks for the CUDA one.
const binDir = "/usr/local/bin"

// image is what a Dockerfile's final stage puts into the image, as BuildKit parses it.
type image struct {
	stages     []instructions.Stage
	lint       []string          // BuildKit's parser and linter warnings
	env        map[string]string // ENV of the final stage
	files      map[string]source // image path -> origin, one entry per COPY target
	runs       []string          // RUN command lines of the final stage
	user       string            // the last USER
	workdir    string
	expose     []string
	health     *dockerspec.HealthcheckConfig
	entrypoint []string
}

// source is where a copied path comes from: a path in the build context (the repository
// root) when stage is empty, else a path in that build stage.
type source struct {
	stage, path string
}

func readImage(t *testing.T, name string) *image {
	t.Helper()
	file, ok := images[name]
	if !ok {
		t.Fatalf("no Dockerfile builds image %q (known: %s)", name, strings.Join(sortedKeys(images), ", "))
	}
	data, err := os.ReadFile(filepath.Join(repo, file))
	if err != nil {
		t.Fatal(err)
	}
	img, err := parseDockerfile(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return img
}

func parseDockerfile(data []byte) (*image, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	img := &image{env: map[string]string{}, files: map[string]source{}}
	for _, w := range res.Warnings {
		img.lint = append(img.lint, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		img.lint = append(img.lint, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	img.stages, _, err = instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	if len(img.stages) == 0 {
		return nil, errors.New("no FROM")
	}
	final := img.stages[len(img.stages)-1]
	img.workdir = "/"
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				img.env[kv.Key] = kv.Value
			}
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				dst := c.DestPath
				if !path.IsAbs(dst) {
					dst = path.Join(img.workdir, dst)
				}
				// A destination ending in / (or one of several sources) is a folder
				// that receives each source by its base name.
				if strings.HasSuffix(c.DestPath, "/") || len(c.SourcePaths) > 1 {
					dst = path.Join(dst, path.Base(src))
				}
				img.files[path.Clean(dst)] = source{stage: c.From, path: src}
			}
		case *instructions.RunCommand:
			img.runs = append(img.runs, strings.Join(c.CmdLine, " "))
		case *instructions.UserCommand:
			img.user = c.User
		case *instructions.WorkdirCommand:
			img.workdir = path.Join(img.workdir, c.Path)
		case *instructions.ExposeCommand:
			img.expose = append(img.expose, c.Ports...)
		case *instructions.HealthCheckCommand:
			img.health = c.Health
		case *instructions.EntrypointCommand:
			img.entrypoint = c.CmdLine
		}
	}
	return img, nil
}

// lookup returns the origin of an image path: a COPY target or a file inside one. A
// relative path is relative to the final WORKDIR, where the entry point starts.
func (img *image) lookup(p string) (source, bool) {
	if !path.IsAbs(p) {
		p = path.Join(img.workdir, p)
	}
	p = path.Clean(p)
	for dst, src := range img.files {
		if p == dst {
			return src, true
		}
		if rel, ok := strings.CutPrefix(p, dst+"/"); ok {
			return source{src.stage, path.Join(src.path, rel)}, true
		}
	}
	return source{}, false
}

// stage returns the build stage named name.
func (img *image) stage(name string) (instructions.Stage, bool) {
	for _, s := range img.stages {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return instructions.Stage{}, false
}

// stageRuns reports whether a RUN of the named stage has word among its words, as in
// `make build-cuda` or `captioner import`.
func (img *image) stageRuns(name, word string) bool {
	st, _ := img.stage(name)
	for _, c := range st.Commands {
		if run, ok := c.(*instructions.RunCommand); ok && slices.Contains(strings.Fields(strings.Join(run.CmdLine, " ")), word) {
			return true
		}
	}
	return false
}

// versionTag is a tag that names a release: a version with at least major.minor
// (1.26.8-bookworm, 12.11-slim, 11.8.0-runtime-ubuntu22.04). Tags such as latest,
// bookworm-slim or 12-slim move to new releases without notice.
var versionTag = regexp.MustCompile(`^v?[0-9]+\.[0-9]+`)

// checkPinned accepts a base image pinned by digest or by a release tag.
func checkPinned(ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("FROM %s: %v", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil
	}
	tagged, ok := named.(reference.Tagged)
	if !ok || !versionTag.MatchString(tagged.Tag()) {
		return fmt.Errorf("FROM %s is not pinned: name a release tag (such as debian:12.11-slim) or a digest (name@sha256:...)", ref)
	}
	return nil
}

// probeURL returns the URL the HEALTHCHECK requests.
func probeURL(h *dockerspec.HealthcheckConfig) (*url.URL, error) {
	for _, arg := range h.Test[1:] {
		if strings.HasPrefix(arg, "http://") {
			return url.Parse(arg)
		}
	}
	return nil, fmt.Errorf("HEALTHCHECK %q requests no http:// URL", h.Test)
}

// checkImageRules applies the rules every captioner image follows; it returns the port
// the image EXPOSEs.
func checkImageRules(img *image) (int, error) {
	var errs []error
	for _, w := range img.lint {
		errs = append(errs, fmt.Errorf("BuildKit warns: %s", w))
	}
	for i, s := range img.stages {
		if slices.ContainsFunc(img.stages[:i], func(prev instructions.Stage) bool { return strings.EqualFold(prev.Name, s.BaseName) }) {
			continue // built on an earlier stage
		}
		if err := checkPinned(s.BaseName); err != nil {
			errs = append(errs, err)
		}
	}
	uid, _, _ := strings.Cut(img.user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		errs = append(errs, fmt.Errorf("final stage USER %q: run as a numeric non-root user (such as USER 10001:10001), so that Kubernetes' runAsNonRoot can check it", img.user))
	}
	port := 0
	if len(img.expose) != 1 {
		errs = append(errs, fmt.Errorf("EXPOSE %q: expose exactly the server's port", img.expose))
	} else if p, err := strconv.Atoi(strings.TrimSuffix(img.expose[0], "/tcp")); err != nil {
		errs = append(errs, fmt.Errorf("EXPOSE %s: not a TCP port number", img.expose[0]))
	} else {
		port = p
	}
	switch {
	case img.health == nil || len(img.health.Test) < 2:
		errs = append(errs, errors.New("no HEALTHCHECK in the final stage: add one that requests /readyz"))
	case img.health.Test[0] != "CMD":
		errs = append(errs, fmt.Errorf("HEALTHCHECK %q: use the exec form (CMD [...]); the shell form needs a shell and hides the probe's exit status", img.health.Test))
	default:
		u, err := probeURL(img.health)
		if err != nil {
			errs = append(errs, err)
			break
		}
		// Healthy is serving: /healthz answers from the start of the load.
		if u.Path != "/readyz" {
			errs = append(errs, fmt.Errorf("HEALTHCHECK requests %s: probe /readyz", u))
		}
		if u.Port() != strconv.Itoa(port) {
			errs = append(errs, fmt.Errorf("HEALTHCHECK requests %s, but the image EXPOSEs %q", u, img.expose))
		}
		// The probe's program must come from a package the final stage installs.
		if prog := img.health.Test[1]; !mentions(img.runs, prog) {
			errs = append(errs, fmt.Errorf("HEALTHCHECK runs %s, which no RUN of the final stage installs", prog))
		}
	}
	return port, errors.Join(errs...)
}

// mentions reports whether a word of one of the command lines starts with prefix
// (busybox matches the package busybox-static).
func mentions(cmdLines []string, prefix string) bool {
	for _, line := range cmdLines {
		for _, w := range strings.Fields(line) {
			if strings.HasPrefix(w, prefix) {
				return true
			}
		}
	}
	return false
}

// checkBaked checks that the image's own configuration points at files the image
// contains, each made by the step that makes it: the shipped model from the repository,
// the encoder's TFLite file by `captioner setup`, and the encoder weights imported from
// it (the file at weights) by `captioner import`.
func checkBaked(img *image, cfg *config.Config, weights string) error {
	var errs []error
	model, ok := img.lookup(cfg.Model)
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("model %s is not in the image: COPY %s there", cfg.Model, config.DefaultModel))
	case model.stage != "" || path.Clean(model.path) != config.DefaultModel:
		errs = append(errs, fmt.Errorf("model %s comes from %+v, not from the repository's %s", cfg.Model, model, config.DefaultModel))
	}
	for _, f := range []struct{ path, step string }{
		{path.Join(cfg.Assets, assets.EncoderTFLite), "setup"},
		{weights, "import"},
	} {
		if src, ok := img.lookup(f.path); !ok || src.stage == "" || !img.stageRuns(src.stage, f.step) {
			errs = append(errs, fmt.Errorf("%s is not copied from a stage that runs `captioner %s`", f.path, f.step))
		}
	}
	return errors.Join(errs...)
}

// encoderWeights returns the file the encoder loads its imported weights from, under
// the environment runConfig set: encoder.CachePath for the pinned TFLite file.
func encoderWeights(t *testing.T) string {
	t.Helper()
	dir, err := encoder.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(assets.Known, func(f assets.File) bool { return f.Path == assets.EncoderTFLite })
	if i < 0 {
		t.Fatalf("assets.Known has no %s", assets.EncoderTFLite)
	}
	return encoder.CachePath(dir, assets.Known[i].SHA256)
}

// imageConfig returns the configuration captioner runs with in img when nothing
// overrides it: the file CAPTIONER_CONFIG names, read from the repository file the
// Dockerfile copies there, under the image's environment.
func imageConfig(t *testing.T, name string, img *image, env map[string]string) *config.Config {
	t.Helper()
	merged := map[string]string{}
	for k, v := range img.env {
		merged[k] = v
	}
	for k, v := range env {
		merged[k] = v
	}
	file := merged[configEnv]
	if file == "" {
		t.Fatalf("%s: %s is not set: the image must name its configuration file", name, configEnv)
	}
	src, ok := img.lookup(file)
	if !ok || src.stage != "" {
		t.Fatalf("%s: %s=%s is not a file copied from the repository", name, configEnv, file)
	}
	data, err := os.ReadFile(filepath.Join(repo, src.path))
	if err != nil {
		t.Fatalf("%s: %s: %v", name, configEnv, err)
	}
	return runConfig(t, name+" "+src.path, data, merged)
}

func TestImages(t *testing.T) {
	for _, name := range sortedKeys(images) {
		t.Run(name, func(t *testing.T) {
			img := readImage(t, name)
			port, err := checkImageRules(img)
			if err != nil {
				t.Errorf("%s: %v", images[name], err)
			}
			cfg := imageConfig(t, name, img, nil)
			if got := mustPort(t, name, cfg); got != port {
				t.Errorf("%s: the server listens on %d (server.addr %s) but the image EXPOSEs and probes %d", name, got, cfg.Server.Addr, port)
			}
			if err := checkBaked(img, cfg, encoderWeights(t)); err != nil {
				t.Errorf("%s: %v", images[name], err)
			}
			// COPY sources from the build context must exist, or the build fails.
			for dst, src := range img.files {
				if src.stage != "" {
					continue
				}
				if _, err := os.Stat(filepath.Join(repo, src.path)); err != nil {
					t.Errorf("%s: COPY %s %s: %v", images[name], src.path, dst, err)
				}
			}
			// The entry point is the CPU binary; it must be on PATH.
			if len(img.entrypoint) == 0 {
				t.Fatalf("%s: no ENTRYPOINT", images[name])
			}
			if _, ok := img.lookup(path.Join(binDir, img.entrypoint[0])); !ok {
				t.Errorf("%s: ENTRYPOINT %q is not copied into %s", images[name], img.entrypoint, binDir)
			}
		})
	}
}

// TestCUDAImage checks what lets one image serve on a GPU node and on a node without one.
func TestCUDAImage(t *testing.T) {
	img := readImage(t, "captioner:cuda")
	// Each binary, and the Makefile target building it; the CUDA one beside the entry
	// point, where the selector looks for it.
	for bin, target := range map[string]string{"captioner": "build", selector.CUDABinary: "build-cuda"} {
		src, ok := img.lookup(path.Join(binDir, bin))
		if !ok || src.stage == "" {
			t.Errorf("%s is not copied from a build stage into %s", bin, binDir)
			continue
		}
		if !img.stageRuns(src.stage, target) {
			t.Errorf("stage %q does not run `make %s`, which builds %s", src.stage, target, bin)
		}
	}
	for k, want := range map[string]string{"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"} {
		if got := img.env[k]; got != want {
			t.Errorf("ENV %s=%q, want %q (the NVIDIA container toolkit reads it)", k, got, want)
		}
	}
	// The runtime stage must carry the CUDA release the binary was built against.
	final := img.stages[len(img.stages)-1]
	build, _ := img.stage(img.files[path.Join(binDir, selector.CUDABinary)].stage)
	if cudaRelease(final.BaseName) == "" || cudaRelease(final.BaseName) != cudaRelease(build.BaseName) {
		t.Errorf("runtime %s and build %s are not the same CUDA release and OS", final.BaseName, build.BaseName)
	}
	if !strings.Contains(final.BaseName, "-runtime-") {
		t.Errorf("runtime stage %s: use an nvidia/cuda runtime image (devel images carry the compiler and headers)", final.BaseName)
	}
	// With device auto on a node without a GPU the CPU binary serves.
	if cfg := imageConfig(t, "captioner:cuda", img, nil); cfg.Device != "auto" {
		t.Errorf("the CUDA image's default device is %q; auto lets it fall back to the CPU", cfg.Device)
	}
}

var cudaImage = regexp.MustCompile(`^nvidia/cuda:([0-9.]+)-(?:runtime|devel|base)(?:-cudnn[0-9]*)?-([a-z]+[0-9.]+)$`)

// cudaRelease returns "11.8.0 ubuntu22.04" for nvidia/cuda:11.8.0-runtime-ubuntu22.04.
func cudaRelease(ref string) string {
	m := cudaImage.FindStringSubmatch(ref)
	if m == nil {
		return ""
	}
	return m[1] + " " + m[2]
}

// debianRelease names Debian's codenames by release number, so that a golang:*-CODENAME
// build stage can be matched against a debian:N.M runtime stage.
var debianRelease = map[string]string{"bookworm": "12", "trixie": "13"}

// TestCPUImageBuildsOnItsRuntimeRelease: a cgo binary built on a newer Debian than it
// runs on fails at start with "GLIBC_2.xx not found".
func TestCPUImageBuildsOnItsRuntimeRelease(t *testing.T) {
	img := readImage(t, "captioner:cpu")
	build, ok := img.stage(img.files[path.Join(binDir, "captioner")].stage)
	if !ok {
		t.Fatal("captioner is not copied from a build stage")
	}
	final := img.stages[len(img.stages)-1]
	codename := build.BaseName[strings.LastIndex(build.BaseName, "-")+1:]
	rel, ok := debianRelease[codename]
	if !ok || !strings.HasPrefix(final.BaseName, "debian:"+rel+".") {
		t.Errorf("build stage %s and runtime stage %s are not the same Debian release", build.BaseName, final.BaseName)
	}
}

func TestImageRulesRejectMistakes(t *testing.T) {
	const good = `FROM golang:1.26.8-bookworm AS build
RUN echo build
FROM debian:12.11-slim
RUN apt-get install -y busybox
USER 10001:10001
EXPOSE 8080
HEALTHCHECK CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]
`
	if img, err := parseDockerfile([]byte(good)); err != nil {
		t.Fatal(err)
	} else if port, err := checkImageRules(img); err != nil || port != 8080 {
		t.Fatalf("the correct Dockerfile was rejected: port %d, %v", port, err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"debian:12.11-slim", "debian:bookworm-slim", "FROM debian:bookworm-slim is not pinned"},
		{"debian:12.11-slim", "debian:12-slim", "FROM debian:12-slim is not pinned"},
		{"debian:12.11-slim", "debian", "FROM debian is not pinned"},
		{"golang:1.26.8-bookworm", "golang:latest", "FROM golang:latest is not pinned"},
		{"debian:12.11-slim", "debian@sha256:" + strings.Repeat("ab", 32), ""},
		{"USER 10001:10001", "USER 0", `final stage USER "0"`},
		{"USER 10001:10001", "USER captioner", `final stage USER "captioner"`},
		{"USER 10001:10001\n", "", `final stage USER ""`},
		{"EXPOSE 8080", "EXPOSE 8080 9090", `EXPOSE ["8080" "9090"]`},
		{"8080/readyz", "8080/healthz", "probe /readyz"},
		{"127.0.0.1:8080", "127.0.0.1:9090", "HEALTHCHECK requests http://127.0.0.1:9090/readyz, but the image EXPOSEs"},
		{"install -y busybox", "install -y curl", "HEALTHCHECK runs busybox, which no RUN of the final stage installs"},
		{`HEALTHCHECK CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]`, "", "no HEALTHCHECK"},
		{`CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]`, "CMD busybox wget -q -O /dev/null http://127.0.0.1:8080/readyz", "use the exec form"},
		{"AS build", "as build", "FromAsCasing"},
	} {
		src := strings.Replace(good, tc.old, tc.new, 1)
		img, err := parseDockerfile([]byte(src))
		if err != nil {
			t.Fatalf("%q -> %q: %v", tc.old, tc.new, err)
		}
		_, err = checkImageRules(img)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q -> %q: rejected: %v", tc.old, tc.new, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: got %v, want an error containing %q", tc.old, tc.new, err, tc.want)
		}
	}
}

func TestImageFilesystemModel(t *testing.T) {
	img, err := parseDockerfile([]byte(`FROM debian:12.11-slim
WORKDIR /opt/app
COPY --from=build /out/a /out/b /usr/local/bin/
COPY models/m models/m
COPY docker/x.yaml /etc/x/x.yaml
`))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]source{
		"/usr/local/bin/a":        {"build", "/out/a"},
		"/usr/local/bin/b":        {"build", "/out/b"},
		"/opt/app/models/m/w.bin": {"", "models/m/w.bin"},
		"/etc/x/x.yaml":           {"", "docker/x.yaml"},
	} {
		if got, ok := img.lookup(p); !ok || got != want {
			t.Errorf("lookup(%s) = %+v, %v; want %+v", p, got, ok, want)
		}
	}
	for _, p := range []string{"/usr/local/bin", "/etc/x/x.yaml.bak", "/opt/app/models/mm"} {
		if got, ok := img.lookup(p); ok {
			t.Errorf("lookup(%s) = %+v; the image has no such file", p, got)
		}
	}
}
