// Tests of the base Kubernetes manifests: StatefulSet, Service, PodDisruptionBudget and PodMonitor.
package deploy

import (
	"maps"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	appName        = "sls-keyword-exporter"
	portName       = "http-metrics"
	port           = 10290
	credentialsRef = "sls-keyword-exporter-credentials"
)

func baseStatefulSet(t *testing.T) (statefulSet, container) {
	t.Helper()
	var s statefulSet
	only(t, loadManifests(t, k8sBase), "StatefulSet", &s)
	if len(s.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("StatefulSet has %d containers, want 1", len(s.Spec.Template.Spec.Containers))
	}
	return s, s.Spec.Template.Spec.Containers[0]
}

func TestStatefulSet(t *testing.T) {
	ms := loadManifests(t, k8sBase)
	for _, m := range ms {
		if m.kind == "Deployment" || m.kind == "DaemonSet" {
			t.Errorf("%s: a %s gives pods random names, so no stable consumer names", m.file, m.kind)
		}
	}
	s, c := baseStatefulSet(t)
	if s.Metadata.Name != appName || s.Spec.Replicas == nil || *s.Spec.Replicas != 2 {
		t.Errorf("StatefulSet %s with replicas %s, want %s with 2", s.Metadata.Name, show(s.Spec.Replicas), appName)
	}
	if s.Spec.ServiceName != appName || s.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("serviceName %q, podManagementPolicy %q; want %q, Parallel", s.Spec.ServiceName, s.Spec.PodManagementPolicy, appName)
	}
	if !selects(s.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not match pod labels %v", s.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels)
	}

	listen, _ := flagValue(c.Args, "web.listen-address")
	if _, p, err := net.SplitHostPort(listen); err != nil || p != strconv.Itoa(port) {
		t.Errorf("--web.listen-address=%q, want port %d", listen, port)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != portName || c.Ports[0].ContainerPort != port {
		t.Errorf("ports %+v, want one %s on %d", c.Ports, portName, port)
	}
	for name, p := range map[string]probe{"/-/healthy": c.LivenessProbe, "/-/ready": c.ReadinessProbe} {
		if p.HTTPGet.Path != name || p.HTTPGet.Port != portName {
			t.Errorf("probe %+v, want GET %s on %s", p.HTTPGet, name, portName)
		}
	}
	var k kustomization
	decodeOne(t, join(k8sBase, "kustomization.yaml"), &k)
	if len(k.Images) != 1 || c.Image != k.Images[0].Name {
		t.Errorf("image %q is not the one kustomization.yaml sets (%+v)", c.Image, k.Images)
	}
}

// terminationGracePeriodSeconds outlasts the checkpoint flush (--shutdown.timeout) plus one scrape
// interval, so the kubelet's SIGKILL never cuts a flush and the last counts get scraped.
func TestTerminationGracePeriod(t *testing.T) {
	s, c := baseStatefulSet(t)
	arg, ok := flagValue(c.Args, "shutdown.timeout")
	if !ok {
		t.Fatal("--shutdown.timeout is not set explicitly")
	}
	shutdown, err := time.ParseDuration(arg)
	if err != nil || shutdown != 15*time.Second {
		t.Fatalf("--shutdown.timeout=%s (%v), want 15s", arg, err)
	}
	var pm podMonitor
	only(t, loadManifests(t, k8sBase), "PodMonitor", &pm)
	scrape := promDuration(t, pm.Spec.PodMetricsEndpoints[0].Interval)
	grace := s.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace != 20 || time.Duration(*grace)*time.Second <= shutdown+scrape {
		t.Errorf("terminationGracePeriodSeconds %s, want 20 (> %s shutdown + %s scrape)", show(grace), shutdown, scrape)
	}
}

func TestConfigMounted(t *testing.T) {
	s, c := baseStatefulSet(t)
	file, ok := flagValue(c.Args, "config.file")
	if !ok || file != "/etc/sls_keyword_exporter/config.yml" {
		t.Fatalf("--config.file=%q, want /etc/sls_keyword_exporter/config.yml", file)
	}
	var k kustomization
	decodeOne(t, join(k8sBase, "kustomization.yaml"), &k)
	if len(k.ConfigMapGenerator) != 1 || !slices.Equal(k.ConfigMapGenerator[0].Files, []string{path.Base(file)}) {
		t.Fatalf("configMapGenerator %+v, want one ConfigMap holding %s", k.ConfigMapGenerator, path.Base(file))
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range s.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == k.ConfigMapGenerator[0].Name &&
				m.MountPath == path.Dir(file) && m.ReadOnly {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("ConfigMap %s is not mounted read-only at %s", k.ConfigMapGenerator[0].Name, path.Dir(file))
	}
}

func TestCredentialsFromSecret(t *testing.T) {
	_, c := baseStatefulSet(t)
	got := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			got[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	want := map[string]string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     credentialsRef + "/access-key-id",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentialsRef + "/access-key-secret",
	}
	if !maps.Equal(got, want) {
		t.Errorf("secret env %v, want %v", got, want)
	}
}

func TestPodSecurityAndResources(t *testing.T) {
	s, c := baseStatefulSet(t)
	pod := s.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 65534 {
		t.Errorf("pod runAsNonRoot %s runAsUser %s, want true and 65534 (nobody, numeric for the kubelet's check)", show(pod.SecurityContext.RunAsNonRoot), show(pod.SecurityContext.RunAsUser))
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false")
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container readOnlyRootFilesystem %s allowPrivilegeEscalation %s drop %q, want true, false, [ALL]", show(sc.ReadOnlyRootFilesystem), show(sc.AllowPrivilegeEscalation), sc.Capabilities.Drop)
	}
	want := map[string]string{"requests.cpu": "100m", "requests.memory": "128Mi", "limits.cpu": "1", "limits.memory": "256Mi"}
	got := map[string]string{}
	for k, v := range c.Resources.Requests {
		got["requests."+k] = v
	}
	for k, v := range c.Resources.Limits {
		got["limits."+k] = v
	}
	if !maps.Equal(got, want) {
		t.Errorf("resources %v, want %v", got, want)
	}
}

func TestServiceAndPodDisruptionBudget(t *testing.T) {
	ms := loadManifests(t, k8sBase)
	s, _ := baseStatefulSet(t)
	podLabels := s.Spec.Template.Metadata.Labels

	var svc service
	only(t, ms, "Service", &svc)
	if svc.Metadata.Name != s.Spec.ServiceName || svc.Spec.ClusterIP != "None" || !selects(svc.Spec.Selector, podLabels) {
		t.Errorf("Service %s (clusterIP %q, selector %v) is not the StatefulSet's headless governing service", svc.Metadata.Name, svc.Spec.ClusterIP, svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != portName || svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].TargetPort != portName {
		t.Errorf("Service ports %+v, want %s %d -> %s", svc.Spec.Ports, portName, port, portName)
	}

	var pdb podDisruptionBudget
	only(t, ms, "PodDisruptionBudget", &pdb)
	if pdb.APIVersion != "policy/v1" || pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget %s maxUnavailable %s minAvailable %s, want policy/v1 maxUnavailable 1", pdb.APIVersion, show(pdb.Spec.MaxUnavailable), show(pdb.Spec.MinAvailable))
	}
	if !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match pod labels %v", pdb.Spec.Selector.MatchLabels, podLabels)
	}
}

func TestPodMonitor(t *testing.T) {
	s, _ := baseStatefulSet(t)
	var pm podMonitor
	only(t, loadManifests(t, k8sBase), "PodMonitor", &pm)
	if pm.APIVersion != "monitoring.coreos.com/v1" || !selects(pm.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels) {
		t.Errorf("PodMonitor %s selector %v does not match pod labels %v", pm.APIVersion, pm.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%d podMetricsEndpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port != portName || ep.Path != "/metrics" || ep.Interval != "1s" || ep.ScrapeTimeout != "1s" {
		t.Errorf("endpoint port %q path %q interval %q scrapeTimeout %q, want %s /metrics 1s 1s", ep.Port, ep.Path, ep.Interval, ep.ScrapeTimeout, portName)
	}
	// The shipped alerts select this job name.
	if len(ep.Relabelings) != 1 || ep.Relabelings[0].Action != "replace" || ep.Relabelings[0].TargetLabel != "job" || ep.Relabelings[0].Replacement != "sls_keyword_exporter" {
		t.Errorf("relabelings %+v, want one setting job to sls_keyword_exporter", ep.Relabelings)
	}
	if !strings.Contains(string(readFile(t, join(repoRoot, "alerts.rules.yml"))), `up{job="sls_keyword_exporter"}`) {
		t.Error(`alerts.rules.yml no longer selects up{job="sls_keyword_exporter"}: update the PodMonitor's job relabeling`)
	}
}
