// The slices of Kubernetes and Prometheus Operator objects the manifest tests read, and their loading.
package deploy

import (
	"maps"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

type meta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Patch     string `yaml:"$patch"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []envVar `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe   probe                                        `yaml:"livenessProbe"`
	ReadinessProbe  probe                                        `yaml:"readinessProbe"`
	Resources       struct{ Requests, Limits map[string]string } `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type podTemplate struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
		ServiceAccountName            string `yaml:"serviceAccountName"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type statefulSet struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		ServiceName         string        `yaml:"serviceName"`
		Replicas            *int          `yaml:"replicas"`
		PodManagementPolicy string        `yaml:"podManagementPolicy"`
		Selector            labelSelector `yaml:"selector"`
		Template            podTemplate   `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podDisruptionBudget struct {
	APIVersion string `yaml:"apiVersion"`
	Spec       struct {
		MaxUnavailable *int          `yaml:"maxUnavailable"`
		MinAvailable   *int          `yaml:"minAvailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type podMonitor struct {
	APIVersion string `yaml:"apiVersion"`
	Spec       struct {
		Selector            labelSelector `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port          string `yaml:"port"`
			Path          string `yaml:"path"`
			Interval      string `yaml:"interval"`
			ScrapeTimeout string `yaml:"scrapeTimeout"`
			Relabelings   []struct {
				Action      string `yaml:"action"`
				TargetLabel string `yaml:"targetLabel"`
				Replacement string `yaml:"replacement"`
			} `yaml:"relabelings"`
		} `yaml:"podMetricsEndpoints"`
	} `yaml:"spec"`
}

type kustomization struct {
	Resources          []string                `yaml:"resources"`
	Patches            []struct{ Path string } `yaml:"patches"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Behavior string   `yaml:"behavior"`
		Files    []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// manifest is one Kubernetes object of a file.
type manifest struct {
	file, kind string
	node       *yaml.Node
}

// loadManifests parses every document of the kustomization's resource files in dir (not recursing
// into other kustomizations).
func loadManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	var k kustomization
	decodeOne(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var out []manifest
	for _, r := range k.Resources {
		if isDirRef(r) {
			continue
		}
		for _, doc := range yamlDocs(t, filepath.Join(dir, r)) {
			var head struct{ APIVersion, Kind string }
			if err := doc.Decode(&struct {
				APIVersion *string `yaml:"apiVersion"`
				Kind       *string `yaml:"kind"`
			}{&head.APIVersion, &head.Kind}); err != nil || head.APIVersion == "" || head.Kind == "" {
				t.Fatalf("%s/%s: a document without apiVersion and kind (%v)", dir, r, err)
			}
			out = append(out, manifest{r, head.Kind, doc})
		}
	}
	return out
}

// only decodes the single object of a kind among manifests into v.
func only(t *testing.T, ms []manifest, kind string, v any) {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	if err := found[0].node.Decode(v); err != nil {
		t.Fatalf("%s: %v", found[0].file, err)
	}
}

// selects reports whether a selector's labels are all among a pod's labels (and it has some).
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	sub := maps.Clone(labels)
	maps.DeleteFunc(sub, func(k, _ string) bool { _, ok := selector[k]; return !ok })
	return maps.Equal(sub, selector)
}

func isDirRef(resource string) bool { return filepath.Ext(resource) == "" }
