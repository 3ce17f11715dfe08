package check

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/captioner/captioner/config"
)

// loadCompose loads a Compose file with compose-go, the loader of `docker compose`
// itself (schema validation, anchors and merges, path resolution), every profile enabled.
func loadCompose(t *testing.T, file string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(repo, file))
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, loader.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadCompose(t, "docker/compose.yaml")
	root, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		t.Run(name, func(t *testing.T) {
			// Each service builds one of the project's images from its Dockerfile.
			file, ok := images[svc.Image]
			if !ok {
				t.Fatalf("image %q is none of the project's (%s)", svc.Image, strings.Join(sortedKeys(images), ", "))
			}
			seen[svc.Image] = true
			if svc.Build == nil || svc.Build.Context != root || svc.Build.Dockerfile != file {
				t.Errorf("build %+v: want context the repository root and dockerfile %s", svc.Build, file)
			}
			img := readImage(t, svc.Image)

			// The configuration the server runs with: the file CAPTIONER_CONFIG names, from a
			// bind mount of a repository file or else from the image, under the environment.
			env := map[string]string{}
			for k, v := range img.env {
				env[k] = v
			}
			for k, v := range svc.Environment {
				if v == nil {
					t.Fatalf("environment %s has no value; the checks read literal values", k)
				}
				env[k] = *v
			}
			var cfgData []byte
			for _, vol := range svc.Volumes {
				if vol.Target != env[configEnv] {
					continue
				}
				rel, err := filepath.Rel(root, vol.Source)
				if err != nil || vol.Type != types.VolumeTypeBind || strings.HasPrefix(rel, "..") {
					t.Fatalf("%s is mounted from %s, not from a repository file", vol.Target, vol.Source)
				}
				if cfgData, err = os.ReadFile(vol.Source); err != nil {
					t.Fatal(err)
				}
			}
			var cfg *config.Config
			if cfgData != nil {
				cfg = runConfig(t, name, cfgData, env)
			} else {
				cfg = imageConfig(t, svc.Image, img, env)
			}
			cfgPort := mustPort(t, name, cfg)
			checkComposeDevice(t, svc, cfg.Device)
			checkComposeDrain(t, svc, cfg.Server.ShutdownGrace)
			if !slices.ContainsFunc(svc.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == cfgPort && pc.Published != "" }) {
				t.Errorf("ports %+v publish no port to the server's %d", svc.Ports, cfgPort)
			}
		})
	}
	for img := range images {
		if !seen[img] {
			t.Errorf("no service runs image %s", img)
		}
	}
}

// checkComposeDevice: the CUDA image's service reserves an NVIDIA GPU and uses it; the
// CPU image's reserves none.
func checkComposeDevice(t *testing.T, svc types.ServiceConfig, device string) {
	t.Helper()
	var gpus []types.DeviceRequest
	if svc.Deploy != nil && svc.Deploy.Resources.Reservations != nil {
		gpus = svc.Deploy.Resources.Reservations.Devices
	}
	reserved := slices.ContainsFunc(gpus, func(d types.DeviceRequest) bool {
		return d.Driver == "nvidia" && slices.Contains(d.Capabilities, "gpu") && (d.Count >= 1 || d.Count == -1 || len(d.IDs) > 0)
	})
	switch svc.Image {
	case "captioner:cuda":
		if !reserved || device == "cpu" {
			t.Errorf("reservations %+v, device %q: want an NVIDIA GPU reserved (driver nvidia, capabilities [gpu], count >= 1) and device cuda or auto", gpus, device)
		}
	default:
		if len(gpus) > 0 || device != "cpu" {
			t.Errorf("reservations %+v, device %q: the CPU image wants no devices and device cpu", gpus, device)
		}
	}
}

// checkComposeDrain: `docker compose stop` sends SIGTERM, then kills after
// stop_grace_period (default 10s).
func checkComposeDrain(t *testing.T, svc types.ServiceConfig, serverGrace time.Duration) {
	t.Helper()
	var grace time.Duration
	if svc.StopGracePeriod != nil {
		grace = time.Duration(*svc.StopGracePeriod)
	}
	if err := checkDrain("stop_grace_period", grace, 0, serverGrace); err != nil {
		t.Error(err)
	}
}

func TestComposeRejectsSchemaErrors(t *testing.T) {
	// compose-go validates against the Compose schema, as `docker compose` does.
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	bad := "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - drivr: nvidia\n"
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir: dir, ConfigFiles: []types.ConfigFile{{Filename: file}}, Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("x", true) })
	if err == nil || !strings.Contains(err.Error(), "drivr") {
		t.Errorf("a misspelt device field: %v", err)
	}
}
