// Tests of the kustomizations: each lists exactly its directory's files, the RRSA overlay, and a real `kustomize build`.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Every file in a kustomization's directory is used by it, and everything it names exists.
func TestKustomizationsListEveryFile(t *testing.T) {
	for _, dir := range []string{k8sBase, k8sRRSA} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var k kustomization
			decodeOne(t, join(dir, "kustomization.yaml"), &k)
			listed := []string{"kustomization.yaml"}
			for _, r := range k.Resources {
				if isDirRef(r) {
					if _, err := os.Stat(join(dir, r, "kustomization.yaml")); err != nil {
						t.Errorf("resource %s is not a kustomization: %v", r, err)
					}
					continue
				}
				listed = append(listed, r)
			}
			for _, p := range k.Patches {
				listed = append(listed, p.Path)
			}
			for _, g := range k.ConfigMapGenerator {
				listed = append(listed, g.Files...)
			}
			slices.Sort(listed)
			if files := listDir(t, dir); !slices.Equal(listed, files) {
				t.Errorf("kustomization.yaml names %q; the directory holds %q", listed, files)
			}
			for _, f := range listed {
				if strings.HasSuffix(f, ".yaml") {
					yamlDocs(t, join(dir, f)) // parses
				}
			}
		})
	}
}

func TestRRSAOverlay(t *testing.T) {
	var k kustomization
	decodeOne(t, join(k8sRRSA, "kustomization.yaml"), &k)
	if !slices.Equal(k.Resources, []string{"../base", "serviceaccount.yaml"}) || len(k.Patches) != 1 {
		t.Fatalf("resources %q patches %+v, want ../base and serviceaccount.yaml with one patch", k.Resources, k.Patches)
	}
	if len(k.ConfigMapGenerator) != 1 || k.ConfigMapGenerator[0].Name != "sls-keyword-exporter-config" || k.ConfigMapGenerator[0].Behavior != "replace" {
		t.Errorf("configMapGenerator %+v, want sls-keyword-exporter-config replaced", k.ConfigMapGenerator)
	}

	var sa struct {
		Kind     string
		Metadata meta
	}
	decodeOne(t, join(k8sRRSA, "serviceaccount.yaml"), &sa)
	if sa.Kind != "ServiceAccount" || sa.Metadata.Annotations["pod-identity.alibabacloud.com/role-name"] != "sls-keyword-exporter" {
		t.Errorf("ServiceAccount %s annotations %v, want pod-identity.alibabacloud.com/role-name", sa.Metadata.Name, sa.Metadata.Annotations)
	}

	base, baseContainer := baseStatefulSet(t)
	var patch statefulSet
	decodeOne(t, join(k8sRRSA, k.Patches[0].Path), &patch)
	pod := patch.Spec.Template
	if patch.Metadata.Name != base.Metadata.Name || pod.Spec.ServiceAccountName != sa.Metadata.Name ||
		pod.Metadata.Labels["pod-identity.alibabacloud.com/injection"] != "on" {
		t.Errorf("patch of %s: serviceAccountName %q, labels %v; want %s and pod-identity.alibabacloud.com/injection: on",
			patch.Metadata.Name, pod.Spec.ServiceAccountName, pod.Metadata.Labels, sa.Metadata.Name)
	}
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != baseContainer.Name {
		t.Fatalf("patch containers %+v, want %s", pod.Spec.Containers, baseContainer.Name)
	}
	var deleted, fromSecret []string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Patch == "delete" {
			deleted = append(deleted, e.Name)
		}
	}
	for _, e := range baseContainer.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret = append(fromSecret, e.Name)
		}
	}
	if !slices.Equal(deleted, fromSecret) {
		t.Errorf("patch deletes env %q, base takes %q from the Secret", deleted, fromSecret)
	}
}

// kustomizeBuild renders a kustomization with kustomize or kubectl, skipping when neither is installed.
func kustomizeBuild(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	var cmd *exec.Cmd
	if p, err := exec.LookPath("kustomize"); err == nil {
		cmd = exec.CommandContext(t.Context(), p, "build", dir)
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		cmd = exec.CommandContext(t.Context(), p, "kustomize", dir)
	} else {
		t.Skip("neither kustomize nor kubectl is installed: the kustomizations are checked file by file only")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.String())
	}
	objects := map[string]map[string]any{} // by kind
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return objects
		} else if err != nil {
			t.Fatal(err)
		}
		kind, _ := obj["kind"].(string)
		if objects[kind] != nil {
			t.Fatalf("%s renders two objects of kind %s", dir, kind)
		}
		objects[kind] = obj
	}
}

func TestKustomizeBuild(t *testing.T) {
	for _, tc := range []struct {
		dir          string
		kinds        []string
		secretEnv    bool
		configSubstr string
	}{
		{k8sBase, []string{"ConfigMap", "PodDisruptionBudget", "PodMonitor", "Service", "StatefulSet"}, true, "consumer_group: keyword-monitor"},
		{k8sRRSA, []string{"ConfigMap", "PodDisruptionBudget", "PodMonitor", "Service", "ServiceAccount", "StatefulSet"}, false, "type: oidc_role_arn"},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			objects := kustomizeBuild(t, tc.dir)
			var kinds []string
			for k := range objects {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tc.kinds) {
				t.Fatalf("kinds %q, want %q", kinds, tc.kinds)
			}
			var cm struct {
				Metadata meta
				Data     map[string]string
			}
			var sts statefulSet
			for kind, v := range map[string]any{"ConfigMap": &cm, "StatefulSet": &sts} {
				data, _ := yaml.Marshal(objects[kind])
				if err := yaml.Unmarshal(data, v); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(cm.Data["config.yml"], tc.configSubstr) {
				t.Errorf("ConfigMap config.yml lacks %q", tc.configSubstr)
			}
			pod := sts.Spec.Template.Spec
			if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != cm.Metadata.Name {
				t.Errorf("volumes %+v do not mount the generated ConfigMap %s", pod.Volumes, cm.Metadata.Name)
			}
			secretEnv := false
			for _, e := range pod.Containers[0].Env {
				secretEnv = secretEnv || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
			}
			if secretEnv != tc.secretEnv {
				t.Errorf("env from a Secret: %v, want %v", secretEnv, tc.secretEnv)
			}
		})
	}
}
