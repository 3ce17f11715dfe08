package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/gpu/selector"
)

// kinds lists the Kubernetes objects the manifests may hold, each with its API version
// and a constructor of its Go type (the strict decoder's and the patcher's schema).
var kinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"ConfigMap":               {"v1", func() any { return &corev1.ConfigMap{} }},
	"Service":                 {"v1", func() any { return &corev1.Service{} }},
	"Deployment":              {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
}

// kustomization is the part of kustomize's format the manifests use. Decoding is
// strict, so a kustomization using anything else (images:, namePrefix:, ...) fails here
// instead of being rendered wrongly; extend render before using it.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Path string `json:"path"`
	} `json:"patches"`
}

// object is one rendered manifest, as JSON.
type object struct {
	kind, name string
	json       []byte
}

// render builds a kustomize directory as `kubectl apply -k` does for the features
// kustomization admits: resources (files or directories, in order), then strategic
// merge patches, each applied to the object of its kind and name.
func render(dir string) ([]object, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("%s/kustomization.yaml: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", dir, k.APIVersion, k.Kind)
	}
	var objs []object
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			sub, err := render(p)
			if err != nil {
				return nil, err
			}
			objs = append(objs, sub...)
			continue
		}
		docs, err := readObjects(p)
		if err != nil {
			return nil, err
		}
		objs = append(objs, docs...)
	}
	for _, pt := range k.Patches {
		patches, err := readObjects(filepath.Join(dir, pt.Path))
		if err != nil {
			return nil, err
		}
		for _, patch := range patches {
			i := slices.IndexFunc(objs, func(o object) bool { return o.kind == patch.kind && o.name == patch.name })
			if i < 0 {
				return nil, fmt.Errorf("%s/%s: patch for %s %s matches no resource", dir, pt.Path, patch.kind, patch.name)
			}
			merged, err := strategicpatch.StrategicMergePatch(objs[i].json, patch.json, kinds[patch.kind].new())
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %v", dir, pt.Path, err)
			}
			objs[i].json = merged
		}
	}
	return objs, nil
}

// readObjects reads the YAML documents of a manifest file, each strictly decoded into
// its Kubernetes type: an unknown or misspelt field fails, as `kubectl apply` would.
func readObjects(file string) ([]object, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []object
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		var meta struct {
			metav1.TypeMeta
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(js, &meta); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		kind, ok := kinds[meta.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: kind %q is not one the checks know (%s)", file, meta.Kind, strings.Join(sortedKeys(kinds), ", "))
		}
		if meta.APIVersion != kind.apiVersion {
			return nil, fmt.Errorf("%s: %s has apiVersion %q, want %q", file, meta.Kind, meta.APIVersion, kind.apiVersion)
		}
		if err := yaml.UnmarshalStrict(js, kind.new()); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %v", file, meta.Kind, meta.Metadata.Name, err)
		}
		objs = append(objs, object{meta.Kind, meta.Metadata.Name, js})
	}
}

// manifests is a rendered deployment, decoded.
type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	configMaps map[string]*corev1.ConfigMap
}

func renderManifests(t *testing.T, dir string) *manifests {
	t.Helper()
	objs, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}}
	for _, o := range objs {
		v := kinds[o.kind].new()
		// Strict again: a patch may not add unknown fields either.
		if err := yaml.UnmarshalStrict(o.json, v); err != nil {
			t.Fatalf("%s: %s %s after patches: %v", dir, o.kind, o.name, err)
		}
		var dup bool
		switch v := v.(type) {
		case *appsv1.Deployment:
			dup, m.deployment = m.deployment != nil, v
		case *corev1.Service:
			dup, m.service = m.service != nil, v
		case *autoscalingv2.HorizontalPodAutoscaler:
			dup, m.hpa = m.hpa != nil, v
		case *corev1.ConfigMap:
			dup, m.configMaps[o.name] = m.configMaps[o.name] != nil, v
		}
		if dup {
			t.Fatalf("%s: two %s objects; the checks expect one", dir, o.kind)
		}
	}
	if m.deployment == nil || m.service == nil || m.hpa == nil {
		t.Fatalf("%s: want a Deployment, a Service and a HorizontalPodAutoscaler", dir)
	}
	return m
}

// variants are the directories users apply with `kubectl apply -k`, and whether their
// pods run on a GPU.
var variants = []struct {
	dir string
	gpu bool
}{
	{"deploy/k8s/base", true},
	{"deploy/k8s/cpu", false},
}

// gpuResource is the extended resource NVIDIA's device plugin advertises.
const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// podConfig returns the configuration the server runs with in container c of m: the
// file CAPTIONER_CONFIG names, from the ConfigMap mounted there (named by configMap) or
// else from the image, under the image's environment overridden by the container's.
func podConfig(t *testing.T, m *manifests, c *corev1.Container, img *image) (cfg *config.Config, configMap string) {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			// A token from a Secret, as docs/deploy.md advises for the admin and
			// live tokens: its value is unknown here, so a stand-in, checked
			// as set.
			env[e.Name] = "secret-from-" + e.ValueFrom.SecretKeyRef.Name
		case e.ValueFrom != nil:
			t.Fatalf("container %s: env %s takes its value from %+v; the checks read literal values and Secrets only", c.Name, e.Name, e.ValueFrom)
		default:
			env[e.Name] = e.Value
		}
	}
	file := env[configEnv]
	if file == "" {
		file = img.env[configEnv]
	}
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(m.deployment.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("container %s mounts volume %q, which the pod does not declare", c.Name, vm.Name)
		}
		vol := m.deployment.Spec.Template.Spec.Volumes[i]
		if vol.ConfigMap == nil || len(vol.ConfigMap.Items) > 0 {
			t.Fatalf("%s=%s is on volume %q, which is not a whole ConfigMap", configEnv, file, vol.Name)
		}
		cm := m.configMaps[vol.ConfigMap.Name]
		if cm == nil {
			t.Fatalf("volume %q mounts ConfigMap %q, which the manifests do not define", vol.Name, vol.ConfigMap.Name)
		}
		data, ok := cm.Data[rel]
		if !ok {
			t.Fatalf("%s=%s: ConfigMap %s has no key %q (keys: %s)", configEnv, file, cm.Name, rel, strings.Join(sortedKeys(cm.Data), ", "))
		}
		if len(cm.Data) != 1 {
			t.Errorf("ConfigMap %s: keys %s; only %s is read", cm.Name, strings.Join(sortedKeys(cm.Data), ", "), rel)
		}
		merged := map[string]string{}
		for k, v := range img.env {
			merged[k] = v
		}
		for k, v := range env {
			merged[k] = v
		}
		return runConfig(t, "ConfigMap "+cm.Name, []byte(data), merged), cm.Name
	}
	return imageConfig(t, c.Image, img, env), ""
}

// containerPort resolves a probe's or Service's port (a number or a port name) in c.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

// preStopSleep returns how long the preStop hook delays SIGTERM.
func preStopSleep(h *corev1.Lifecycle) (time.Duration, error) {
	switch {
	case h == nil || h.PreStop == nil:
		return 0, errors.New("no preStop hook: without one, the pod gets SIGTERM while the Service still routes to it")
	case h.PreStop.Sleep != nil:
		return time.Duration(h.PreStop.Sleep.Seconds) * time.Second, nil
	case h.PreStop.Exec != nil && len(h.PreStop.Exec.Command) == 2 && h.PreStop.Exec.Command[0] == "sleep":
		s, err := strconv.Atoi(h.PreStop.Exec.Command[1])
		if err != nil || s <= 0 {
			return 0, fmt.Errorf("preStop %q: want sleep SECONDS", h.PreStop.Exec.Command)
		}
		return time.Duration(s) * time.Second, nil
	}
	return 0, fmt.Errorf("preStop %+v: want a sleep (exec [sleep N] or the sleep action)", h.PreStop)
}

// checkDrain checks the shutdown sequence: the preStop sleep (Kubernetes; none under
// Compose), then the server's grace period for what it accepted, must both fit in the
// grace period the orchestrator gives before it kills the container, or requests are
// killed mid-flight. what names the orchestrator's setting; 0 means it is not set.
func checkDrain(what string, grace, preStop, serverGrace time.Duration) error {
	if grace == 0 {
		return fmt.Errorf("%s is not set (the default is not derived from server.shutdown_grace, %s)", what, serverGrace)
	}
	if grace <= preStop+serverGrace {
		return fmt.Errorf("%s %s must exceed the preStop sleep (%s) plus server.shutdown_grace (%s): raise it to at least %s",
			what, grace, preStop, serverGrace, preStop+serverGrace+5*time.Second)
	}
	return nil
}

func TestKubernetes(t *testing.T) {
	for _, v := range variants {
		t.Run(path.Base(v.dir), func(t *testing.T) {
			m := renderManifests(t, filepath.Join(repo, v.dir))
			d := m.deployment
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("Deployment %s: %d containers, want 1", d.Name, len(pod.Containers))
			}
			c := &pod.Containers[0]
			img := readImage(t, c.Image)
			cfg, used := podConfig(t, m, c, img)
			port := mustPort(t, v.dir, cfg)
			for name := range m.configMaps {
				if name != used {
					t.Errorf("ConfigMap %s is not mounted where %s points: the server never reads it", name, configEnv)
				}
			}

			// Ports and probes agree with where the server listens.
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == port }) {
				t.Errorf("container ports %v do not include the server's port %d (server.addr %s)", c.Ports, port, cfg.Server.Addr)
			}
			for _, p := range []struct {
				name, path string
				probe      *corev1.Probe
			}{
				{"readinessProbe", "/readyz", c.ReadinessProbe},
				{"livenessProbe", "/healthz", c.LivenessProbe},
				{"startupProbe", "/readyz", c.StartupProbe}, // the load: /healthz answers from its start
			} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s: want an httpGet probe on %s", p.name, p.path)
					continue
				}
				if g := p.probe.HTTPGet; g.Path != p.path || containerPort(c, g.Port) != port {
					t.Errorf("%s requests %s on port %s (%d), want %s on %d", p.name, g.Path, g.Port.String(), containerPort(c, g.Port), p.path, port)
				}
			}
			// The load's time: enough to load and warm the model, and short
			// enough that a load that hangs restarts the pod.
			if sp := c.StartupProbe; sp != nil {
				period, failures := sp.PeriodSeconds, sp.FailureThreshold
				if period == 0 {
					period = 10 // Kubernetes' defaults
				}
				if failures == 0 {
					failures = 3
				}
				budget := time.Duration(period*failures) * time.Second
				if budget < time.Minute || budget > 5*time.Minute {
					t.Errorf("startupProbe allows %v (periodSeconds %d x failureThreshold %d): give the model load 1 to 5 minutes", budget, period, failures)
				}
			}
			if got := d.Spec.Template.Annotations["prometheus.io/port"]; got != strconv.Itoa(port) {
				t.Errorf("annotation prometheus.io/port %q, want %d", got, port)
			}
			sleep, err := preStopSleep(c.Lifecycle)
			if err != nil {
				t.Error(err)
			}
			var grace time.Duration
			if pod.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			}
			if err := checkDrain("terminationGracePeriodSeconds", grace, sleep, cfg.Server.ShutdownGrace); err != nil {
				t.Error(err)
			}

			// The image's non-root user, checked by the kubelet.
			uid, _ := strconv.ParseInt(strings.Split(img.user, ":")[0], 10, 64)
			if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != uid {
				t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d (the image's USER)", pod.SecurityContext, uid)
			}
			if sc := c.SecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem &&
				!slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == "/tmp" }) {
				t.Error("read-only root filesystem without a volume on /tmp: large uploads spill there")
			}

			// The device: a GPU requested, the CUDA build present, and the server told to use it.
			gpus := c.Resources.Limits[gpuResource]
			_, hasCUDA := img.lookup(path.Join(binDir, selector.CUDABinary))
			if v.gpu {
				if gpus.Value() < 1 || !hasCUDA || cfg.Device == "cpu" {
					t.Errorf("GPU variant: limit %s=%s, image %s (captioner-cuda present: %v), device %q; want a GPU, the CUDA image and device cuda or auto",
						gpuResource, gpus.String(), c.Image, hasCUDA, cfg.Device)
				}
			} else {
				if !gpus.IsZero() || cfg.Device != "cpu" || len(pod.Tolerations) > 0 {
					t.Errorf("CPU variant: limit %s=%s, device %q, tolerations %v; want no GPU, device cpu and no GPU-node toleration",
						gpuResource, gpus.String(), cfg.Device, pod.Tolerations)
				}
				// Kernel threads sized to the CPU limit, not to the node's cores.
				if lim, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && int64(cfg.Threads) != lim.Value() {
					t.Errorf("threads %d, but the container's CPU limit is %s: set threads to the limit", cfg.Threads, lim.String())
				}
			}

			// The Deployment selects its own pods; the Service reaches the server's port.
			sel := d.Spec.Selector.MatchLabels
			for k, val := range sel {
				if d.Spec.Template.Labels[k] != val {
					t.Errorf("Deployment selector %v does not match its pod labels %v", sel, d.Spec.Template.Labels)
				}
			}
			if !reflect.DeepEqual(m.service.Spec.Selector, sel) {
				t.Errorf("Service selector %v, want the Deployment's %v", m.service.Spec.Selector, sel)
			}
			for _, sp := range m.service.Spec.Ports {
				if containerPort(c, sp.TargetPort) != port {
					t.Errorf("Service port %d targets %s, not the server's port %d", sp.Port, sp.TargetPort.String(), port)
				}
			}

			// The autoscaler scales this Deployment, and has the requests its metrics divide by.
			h := m.hpa
			if ref := h.Spec.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
				t.Errorf("HPA targets %+v, want apps/v1 Deployment %s", ref, d.Name)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
				t.Errorf("HPA replicas %v..%d", h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
			for _, mt := range h.Spec.Metrics {
				if mt.Resource == nil || mt.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
					continue
				}
				if _, ok := c.Resources.Requests[mt.Resource.Name]; !ok {
					t.Errorf("HPA scales on %s utilization, but the container requests no %s", mt.Resource.Name, mt.Resource.Name)
				}
			}
		})
	}
}

// TestGPUConfigMapIsGPUConfig: the base ConfigMap is configs/gpu.yaml, so GPU tuning
// lives in one place.
func TestGPUConfigMapIsGPUConfig(t *testing.T) {
	m := renderManifests(t, filepath.Join(repo, "deploy/k8s/base"))
	c := &m.deployment.Spec.Template.Spec.Containers[0]
	got, _ := podConfig(t, m, c, readImage(t, c.Image))
	data, err := os.ReadFile(filepath.Join(repo, "configs/gpu.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := runConfig(t, "configs/gpu.yaml", data, map[string]string{config.EnvName("assets"): got.Assets})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deploy/k8s/base/configmap.yaml differs from configs/gpu.yaml:\n got %+v\nwant %+v", got, want)
	}
}

func TestKubernetesChecksRejectMistakes(t *testing.T) {
	const s = time.Second
	if err := checkDrain("grace", 45*s, 5*s, 30*s); err != nil {
		t.Errorf("45s for 5s + 30s: %v", err)
	}
	if err := checkDrain("grace", 45*s, 5*s, 40*s); err == nil ||
		!strings.Contains(err.Error(), "grace 45s must exceed the preStop sleep (5s) plus server.shutdown_grace (40s): raise it to at least 50s") {
		t.Errorf("45s for 5s + 40s: %v", err)
	}
	if err := checkDrain("grace", 30*s, 0, 30*s); err == nil {
		t.Error("a grace period equal to the server's was accepted")
	}
	if err := checkDrain("grace", 0, 0, s); err == nil || !strings.Contains(err.Error(), "grace is not set") {
		t.Errorf("an unset grace period: %v", err)
	}
	for _, tc := range []struct {
		hook *corev1.Lifecycle
		want time.Duration
		err  string
	}{
		{&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "7"}}}}, 7 * time.Second, ""},
		{&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3}}}, 3 * time.Second, ""},
		{&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "x"}}}}, 0, "want sleep SECONDS"},
		{&corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/drain"}}}, 0, "want a sleep"},
		{nil, 0, "no preStop hook"},
	} {
		got, err := preStopSleep(tc.hook)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("preStopSleep(%+v) = %s, %v; want %s, %q", tc.hook, got, err, tc.want, tc.err)
		}
	}

	// Strict decoding and the renderer refuse what they would otherwise get wrong.
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [svc.yaml]\n"
	for _, tc := range []struct{ kust, svc, want string }{
		{kust, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selectr: {a: b}}\n", `unknown field "selectr"`},
		{kust, "apiVersion: apps/v1\nkind: Service\nmetadata: {name: s}\n", `Service has apiVersion "apps/v1", want "v1"`},
		{kust, "apiVersion: v1\nkind: Pod\nmetadata: {name: s}\n", `kind "Pod" is not one the checks know`},
		{kust + "images: [{name: a, newTag: b}]\n", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", `unknown field "images"`},
		{kust + "patches: [{path: svc.yaml}]\n", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", ""},
	} {
		write("kustomization.yaml", tc.kust)
		write("svc.yaml", tc.svc)
		_, err := render(dir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("render(%q, %q) = %v, want %q", tc.kust, tc.svc, err, tc.want)
		}
	}
}

// TestRenderAppliesPatches checks the renderer on the CPU overlay's own patches: null
// deletes, a list of containers merges by name, scalars are replaced.
func TestRenderAppliesPatches(t *testing.T) {
	m := renderManifests(t, filepath.Join(repo, "deploy/k8s/cpu"))
	pod := m.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "captioner:cpu" || c.ReadinessProbe == nil || pod.Tolerations != nil || m.hpa.Spec.MaxReplicas != 10 || m.hpa.Spec.MinReplicas == nil {
		t.Errorf("patched Deployment: image %s, readiness kept %v, tolerations %v, HPA max %d min %v",
			c.Image, c.ReadinessProbe != nil, pod.Tolerations, m.hpa.Spec.MaxReplicas, m.hpa.Spec.MinReplicas)
	}
	if _, ok := c.Resources.Limits[gpuResource]; ok {
		t.Errorf("limits %v: the null in the patch did not delete the GPU", c.Resources.Limits)
	}
}
