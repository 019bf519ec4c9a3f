package helm

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// objects indexes one rendering's decoded manifests.
type objects struct {
	vals        common.Values
	deployments []*appsv1.Deployment
	daemonSets  []*appsv1.DaemonSet
	services    []*corev1.Service
	secrets     map[string]*corev1.Secret
	ingresses   []*networkingv1.Ingress
	policies    []*networkingv1.NetworkPolicy
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	monitors    []*serviceMonitor
	accounts    map[string]bool
}

func index(vals common.Values, ms []manifest) objects {
	o := objects{vals: vals, secrets: map[string]*corev1.Secret{}, accounts: map[string]bool{}}
	for _, m := range ms {
		switch v := m.obj.(type) {
		case *appsv1.Deployment:
			o.deployments = append(o.deployments, v)
		case *appsv1.DaemonSet:
			o.daemonSets = append(o.daemonSets, v)
		case *corev1.Service:
			o.services = append(o.services, v)
		case *corev1.Secret:
			o.secrets[v.Name] = v
		case *corev1.ServiceAccount:
			o.accounts[v.Name] = true
		case *networkingv1.Ingress:
			o.ingresses = append(o.ingresses, v)
		case *networkingv1.NetworkPolicy:
			o.policies = append(o.policies, v)
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpas = append(o.hpas, v)
		case *serviceMonitor:
			o.monitors = append(o.monitors, v)
		}
	}
	return o
}

// val reads a dotted path of the effective values.
func (o objects) val(t *testing.T, path string) any {
	t.Helper()
	var v any = map[string]any(o.vals)
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("value %s: %q is not a table", path, k)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("value %s: no %q", path, k)
		}
	}
	return v
}

func (o objects) str(t *testing.T, path string) string { t.Helper(); return fmt.Sprint(o.val(t, path)) }

func (o objects) on(t *testing.T, path string) bool {
	t.Helper()
	b, ok := o.val(t, path).(bool)
	if !ok {
		t.Fatalf("value %s is not a boolean", path)
	}
	return b
}

func (o objects) control(t *testing.T) *appsv1.Deployment {
	t.Helper()
	if len(o.deployments) != 1 || len(o.daemonSets) != 1 {
		t.Fatalf("want one Deployment (control) and one DaemonSet (nodes), got %d and %d", len(o.deployments), len(o.daemonSets))
	}
	return o.deployments[0]
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestProperties(t *testing.T) {
	for _, f := range valuesFiles {
		t.Run(filepath.Base(f), func(t *testing.T) {
			vals, ms := renderCase(t, f)
			o := index(vals, ms)
			ctl := o.control(t)
			node := o.daemonSets[0]
			t.Run("control", func(t *testing.T) { checkControl(t, o, ctl) })
			t.Run("node", func(t *testing.T) { checkNode(t, o, node) })
			t.Run("references", func(t *testing.T) { checkReferences(t, o, ctl, node) })
			t.Run("optional", func(t *testing.T) { checkOptional(t, o, ctl, node) })
		})
	}
}

// checkControl: unprivileged, probed on the API port, in role control, replicas as asked.
func checkControl(t *testing.T, o objects, ctl *appsv1.Deployment) {
	ps := ctl.Spec.Template.Spec
	if !selects(t, ctl.Spec.Selector, ctl.Spec.Template.Labels) {
		t.Errorf("control's selector %v does not select its pods %v", ctl.Spec.Selector, ctl.Spec.Template.Labels)
	}
	if ps.HostNetwork || ps.HostPID {
		t.Error("control runs in the host's network or PID namespace; it needs neither")
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser == 0 {
		t.Errorf("control's pod security context %+v: want runAsNonRoot and a non-zero runAsUser", ps.SecurityContext)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("control has %d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Errorf("control's container security context %+v: want unprivileged, no escalation, read-only root, all capabilities dropped", sc)
	}
	env := envOf(c)
	if env["WARREN_ROLE"].Value != "control" {
		t.Errorf("control's WARREN_ROLE = %q", env["WARREN_ROLE"].Value)
	}
	if env["WARREN_DOMAIN"].Value != o.str(t, "domain") {
		t.Errorf("control's WARREN_DOMAIN = %q, want the domain value %q", env["WARREN_DOMAIN"].Value, o.str(t, "domain"))
	}
	api := o.str(t, "control.ports.api")
	if env["WARREN_LISTEN"].Value != "0.0.0.0:"+api {
		t.Errorf("control's WARREN_LISTEN = %q, want 0.0.0.0:%s", env["WARREN_LISTEN"].Value, api)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || (p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz") || p.HTTPGet.Port.String() != "http" {
			t.Errorf("control's %s probe %+v: want an HTTP GET of /healthz or /readyz on the API port", name, p)
		}
	}
	if !hasPort(c, "http", api) {
		t.Errorf("control's container has no port http=%s", api)
	}
	// Its data dir is an emptyDir: control keeps its state in PostgreSQL.
	var dataDir bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == env["WARREN_DATA_DIR"].Value {
			for _, v := range ps.Volumes {
				dataDir = dataDir || (v.Name == m.Name && v.EmptyDir != nil)
			}
		}
	}
	if !dataDir {
		t.Errorf("control's data dir %q is not an emptyDir mount", env["WARREN_DATA_DIR"].Value)
	}
	if o.on(t, "control.autoscaling.enabled") {
		if ctl.Spec.Replicas != nil {
			t.Errorf("control sets replicas=%d while the HPA scales it", *ctl.Spec.Replicas)
		}
	} else if ctl.Spec.Replicas == nil || fmt.Sprint(*ctl.Spec.Replicas) != o.str(t, "control.replicas") {
		t.Errorf("control's replicas = %v, want control.replicas %s", ctl.Spec.Replicas, o.str(t, "control.replicas"))
	}
}

func hasPort(c corev1.Container, name, number string) bool {
	for _, p := range c.Ports {
		if p.Name == name && fmt.Sprint(p.ContainerPort) == number {
			return true
		}
	}
	return false
}

// checkNode: on the labelled hosts, in the host's network, advertising the host's address.
func checkNode(t *testing.T, o objects, ds *appsv1.DaemonSet) {
	ps := ds.Spec.Template.Spec
	if !selects(t, ds.Spec.Selector, ds.Spec.Template.Labels) {
		t.Errorf("the DaemonSet's selector %v does not select its pods %v", ds.Spec.Selector, ds.Spec.Template.Labels)
	}
	if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("nodes: hostNetwork=%v dnsPolicy=%q; want the host's network and ClusterFirstWithHostNet (to resolve the database's Service)", ps.HostNetwork, ps.DNSPolicy)
	}
	want, _ := o.val(t, "node.nodeSelector").(map[string]any)
	if len(want) == 0 || len(ps.NodeSelector) != len(want) {
		t.Errorf("nodes' nodeSelector %v, want node.nodeSelector %v", ps.NodeSelector, want)
	}
	for k, v := range want {
		if ps.NodeSelector[k] != fmt.Sprint(v) {
			t.Errorf("nodes' nodeSelector[%s] = %q, want %q", k, ps.NodeSelector[k], v)
		}
	}
	if tol, _ := o.val(t, "node.tolerations").([]any); len(ps.Tolerations) != len(tol) {
		t.Errorf("nodes have %d tolerations, node.tolerations has %d", len(ps.Tolerations), len(tol))
	}
	c := ps.Containers[0]
	env := envOf(c)
	if f := env["HOST_IP"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "status.hostIP" {
		t.Errorf("nodes' HOST_IP does not come from status.hostIP: %+v", env["HOST_IP"])
	}
	if f := env["WARREN_NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("nodes' WARREN_NODE_NAME does not come from spec.nodeName: %+v", env["WARREN_NODE_NAME"])
	}
	port := o.str(t, "node.internalPort")
	for _, k := range []string{"WARREN_ADVERTISE", "WARREN_INTERNAL_LISTEN"} {
		if env[k].Value != "$(HOST_IP):"+port {
			t.Errorf("nodes' %s = %q, want $(HOST_IP):%s", k, env[k].Value, port)
		}
	}
	if env["WARREN_ROLE"].Value != "node" || env["WARREN_DOMAIN"].Value != o.str(t, "domain") {
		t.Errorf("nodes' WARREN_ROLE=%q WARREN_DOMAIN=%q", env["WARREN_ROLE"].Value, env["WARREN_DOMAIN"].Value)
	}
	// HOST_IP is declared before the variables that expand it (Kubernetes expands only earlier ones).
	for i, e := range c.Env {
		if strings.Contains(e.Value, "$(HOST_IP)") && (i == 0 || c.Env[0].Name != "HOST_IP") {
			t.Errorf("nodes' %s uses $(HOST_IP) but HOST_IP is not the first variable", e.Name)
		}
	}
	if !hasPort(c, "internal", port) {
		t.Errorf("nodes' container has no port internal=%s", port)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "internal" || (p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz") {
			t.Errorf("nodes' %s probe %+v: want /healthz or /readyz (no cluster secret needed) on the internal port", name, p)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("nodes' security context %+v: want privileged (README.md of the chart says why)", sc)
	}
	hostPaths := map[string]string{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = hostPaths[m.Name]
	}
	if mounts[env["WARREN_DATA_DIR"].Value] != o.str(t, "node.hostPaths.data") || mounts["/var/cache/warren"] != o.str(t, "node.hostPaths.cache") {
		t.Errorf("nodes' data dir and cache are not the hostPaths node.hostPaths.*: mounts %v", mounts)
	}
	for _, k := range []string{"WARREN_TEMPLATE_CACHE", "WARREN_IMAGE_CACHE", "WARREN_RUNSC_CACHE"} {
		if !strings.HasPrefix(env[k].Value, "/var/cache/warren/") {
			t.Errorf("nodes' %s = %q is not in the cache hostPath", k, env[k].Value)
		}
	}
	checkDoctor(t, o, ps)
}

// checkDoctor: the doctor init container reports a host that cannot run sandboxes and
// waits, rather than exiting non-zero (which would crash-loop the pod).
func checkDoctor(t *testing.T, o objects, ps corev1.PodSpec) {
	if !o.on(t, "node.doctor.enabled") {
		if len(ps.InitContainers) != 0 {
			t.Errorf("node.doctor.enabled is false but the nodes have init containers %v", ps.InitContainers)
		}
		return
	}
	if len(ps.InitContainers) != 1 || ps.InitContainers[0].Name != "doctor" {
		t.Fatalf("nodes' init containers %v, want one named doctor", ps.InitContainers)
	}
	script := strings.Join(ps.InitContainers[0].Command, " ")
	for _, want := range []string{"warren doctor", "while :", "sleep " + o.str(t, "node.doctor.retrySeconds"), "exit 0", "doctor-report.txt"} {
		if !strings.Contains(script, want) {
			t.Errorf("the doctor init container's command lacks %q:\n%s", want, script)
		}
	}
	if regexp.MustCompile(`exit [1-9]`).MatchString(script) {
		t.Errorf("the doctor init container exits non-zero somewhere (a crash loop):\n%s", script)
	}
}

// checkReferences: every name one object gives another exists: secrets, services, ports,
// selectors, the service account and the HPA's target.
func checkReferences(t *testing.T, o objects, ctl *appsv1.Deployment, node *appsv1.DaemonSet) {
	declared := map[string]bool{}
	for _, p := range []string{"database.existingSecret", "redis.existingSecret", "clusterSecret.existingSecret", "adminKey.existingSecret"} {
		if s := o.str(t, p); s != "" {
			declared[s] = true
		}
	}
	for _, ps := range []corev1.PodSpec{ctl.Spec.Template.Spec, node.Spec.Template.Spec} {
		if o.on(t, "serviceAccount.create") && !o.accounts[ps.ServiceAccountName] {
			t.Errorf("pods use service account %q, which the chart does not render", ps.ServiceAccountName)
		}
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			if !strings.HasPrefix(c.Image, o.str(t, "image.repository")+":") || strings.HasSuffix(c.Image, ":") {
				t.Errorf("container %s: image %q is not image.repository:tag", c.Name, c.Image)
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if s, ok := o.secrets[ref.Name]; ok {
					_, inData := s.Data[ref.Key]
					_, inString := s.StringData[ref.Key]
					if !inData && !inString {
						t.Errorf("%s: %s reads key %q of Secret %s, which has no such key", c.Name, e.Name, ref.Key, ref.Name)
					}
				} else if !declared[ref.Name] {
					t.Errorf("%s: %s reads Secret %q, neither rendered nor named in the values", c.Name, e.Name, ref.Name)
				}
			}
		}
	}
	// Every control and node shares the one admin key (none makes its own), and a
	// chart-made one is a well-formed key.
	for _, ps := range []corev1.PodSpec{ctl.Spec.Template.Spec, node.Spec.Template.Spec} {
		if e, ok := envOf(ps.Containers[0])["WARREN_ADMIN_KEY"]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("container %s has no WARREN_ADMIN_KEY from a Secret", ps.Containers[0].Name)
		}
	}
	if o.str(t, "adminKey.existingSecret") == "" {
		var made string
		for name, sec := range o.secrets {
			if strings.HasSuffix(name, "-admin-key") {
				made = string(sec.Data["admin-key"])
			}
		}
		if !regexp.MustCompile(`^sk_[A-Za-z0-9]{40}$`).MatchString(made) {
			t.Errorf("the chart-made admin key %q is not sk_ and 40 letters and digits", made)
		}
	}
	if _, ok := o.secrets[o.str(t, "database.existingSecret")]; ok {
		t.Error("the chart renders the existing database Secret it was told to use")
	}
	pods := map[string]*corev1.PodTemplateSpec{"control": &ctl.Spec.Template, "node": &node.Spec.Template}
	svcPorts := map[string]map[string]bool{}
	for _, s := range o.services {
		svcPorts[s.Name] = map[string]bool{}
		var target *corev1.PodTemplateSpec
		for _, p := range pods {
			if selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, p.Labels) {
				target = p
			}
		}
		if target == nil {
			t.Errorf("Service %s selects no pods (selector %v)", s.Name, s.Spec.Selector)
			continue
		}
		for _, sp := range s.Spec.Ports {
			svcPorts[s.Name][sp.Name] = true
			found := false
			for _, cp := range target.Spec.Containers[0].Ports {
				found = found || cp.Name == sp.TargetPort.String()
			}
			if !found {
				t.Errorf("Service %s port %s targets %q, which its pods do not declare", s.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}
	for _, ing := range o.ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || !svcPorts[b.Name][b.Port.Name] {
					t.Errorf("Ingress %s host %s routes to %+v, not a rendered Service port", ing.Name, r.Host, b)
				}
			}
		}
	}
	for _, pdb := range o.pdbs {
		if !selects(t, pdb.Spec.Selector, ctl.Spec.Template.Labels) || selects(t, pdb.Spec.Selector, node.Spec.Template.Labels) {
			t.Errorf("PodDisruptionBudget %s does not select exactly the control pods", pdb.Name)
		}
	}
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != ctl.Name {
			t.Errorf("HPA %s targets %+v, not the control Deployment %s", h.Name, h.Spec.ScaleTargetRef, ctl.Name)
		}
	}
	for _, m := range o.monitors {
		matched := 0
		for _, s := range o.services {
			if selects(t, &m.Spec.Selector, s.Labels) {
				matched++
				for _, ep := range m.Spec.Endpoints {
					if !svcPorts[s.Name][ep.Port] {
						t.Errorf("ServiceMonitor scrapes port %q, which Service %s lacks", ep.Port, s.Name)
					}
				}
			}
		}
		if matched != 2 {
			t.Errorf("ServiceMonitor %s selects %d Services, want the two metrics Services", m.Name, matched)
		}
	}
}

// checkOptional: what the values switch on and off is rendered or not, with their settings.
func checkOptional(t *testing.T, o objects, ctl *appsv1.Deployment, node *appsv1.DaemonSet) {
	count := func(on bool) int {
		if on {
			return 1
		}
		return 0
	}
	if got, want := len(o.hpas), count(o.on(t, "control.autoscaling.enabled")); got != want {
		t.Fatalf("%d HPAs rendered, want %d", got, want)
	}
	for _, h := range o.hpas {
		m := h.Spec.Metrics
		if fmt.Sprint(*h.Spec.MinReplicas) != o.str(t, "control.autoscaling.minReplicas") || fmt.Sprint(h.Spec.MaxReplicas) != o.str(t, "control.autoscaling.maxReplicas") ||
			len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU ||
			fmt.Sprint(*m[0].Resource.Target.AverageUtilization) != o.str(t, "control.autoscaling.targetCPUUtilizationPercentage") {
			t.Errorf("HPA %+v does not carry control.autoscaling's values", h.Spec)
		}
		if _, ok := ctl.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Error("the HPA scales on CPU but control requests no CPU")
		}
	}
	if got, want := len(o.pdbs), count(o.on(t, "control.podDisruptionBudget.enabled")); got != want {
		t.Errorf("%d PodDisruptionBudgets rendered, want %d", got, want)
	}
	if got, want := len(o.monitors), count(o.on(t, "metrics.serviceMonitor.enabled")); got != want {
		t.Errorf("%d ServiceMonitors rendered, want %d", got, want)
	}
	if got, want := len(o.ingresses), 2*count(o.on(t, "ingress.enabled")); got != want {
		t.Errorf("%d Ingresses rendered, want %d", got, want)
	}
	for _, ing := range o.ingresses {
		if o.on(t, "ingress.tls.enabled") != (len(ing.Spec.TLS) == 1) {
			t.Errorf("Ingress %s has TLS %v, ingress.tls.enabled is %v", ing.Name, ing.Spec.TLS, o.on(t, "ingress.tls.enabled"))
		}
		for _, r := range ing.Spec.Rules {
			if r.Host != o.str(t, "ingress.api.host") && r.Host != "*."+o.str(t, "domain") {
				t.Errorf("Ingress %s serves host %q: neither the API host nor *.<domain>", ing.Name, r.Host)
			}
		}
	}
	if got, want := len(o.policies), 2*count(o.on(t, "networkPolicy.enabled")); got != want {
		t.Fatalf("%d NetworkPolicies rendered, want %d", got, want)
	}
	internal := o.str(t, "node.internalPort")
	for _, p := range o.policies {
		if !selects(t, &p.Spec.PodSelector, node.Spec.Template.Labels) {
			continue
		}
		// The node policy: the internal port only from control pods.
		for _, r := range p.Spec.Ingress {
			for _, port := range r.Ports {
				if port.Port.String() != internal {
					continue
				}
				if len(r.From) == 0 {
					t.Errorf("NetworkPolicy %s opens the internal port to everyone", p.Name)
				}
				for _, peer := range r.From {
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil || !selects(t, peer.PodSelector, ctl.Spec.Template.Labels) {
						t.Errorf("NetworkPolicy %s lets %+v reach the internal port; want only the control pods", p.Name, peer)
					}
				}
			}
		}
		return
	}
	if len(o.policies) > 0 {
		t.Error("no NetworkPolicy selects the node pods")
	}
}

// TestEnvNamesExist: every WARREN_* variable the chart sets is one the server reads (its
// name appears quoted in the server's Go source), so a renamed setting cannot leave the
// chart setting a variable nobody reads.
func TestEnvNamesExist(t *testing.T) {
	src := serverSource(t)
	_, ms := renderCase(t, "ci/production-values.yaml")
	o := index(nil, ms)
	seen := map[string]bool{}
	for _, ps := range []corev1.PodSpec{o.deployments[0].Spec.Template.Spec, o.daemonSets[0].Spec.Template.Spec} {
		for _, c := range ps.Containers {
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "WARREN_") && !seen[e.Name] {
					seen[e.Name] = true
					if !strings.Contains(src, `"`+e.Name+`"`) {
						t.Errorf("the chart sets %s, which no Go file under internal/ or cmd/ reads", e.Name)
					}
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d WARREN_ variables found in the rendered pods", len(seen))
	}
}

// serverSource is the text of every non-test Go file under internal/ and cmd/.
func serverSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			data, err := os.ReadFile(p)
			b.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
