package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The manifests, copied into memory so that each case can break one thing.
func manifests(t *testing.T) filesys.FileSystem {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir("../k8s", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fs.WriteFile(filepath.Join("/k8s", path[len("../k8s"):]), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestOverlaysAreValid(t *testing.T) {
	fs := manifests(t)
	for overlay, want := range map[string]map[string]int{
		"dev": {"Deployment": 4, "Service": 2, "HorizontalPodAutoscaler": 2,
			"PodDisruptionBudget": 4, "Job": 1, "Ingress": 1, "ConfigMap": 1, "Namespace": 1},
		"prod": {"Deployment": 5, "Service": 2, "HorizontalPodAutoscaler": 2,
			"PodDisruptionBudget": 5, "Job": 1, "Ingress": 1, "ConfigMap": 1, "Namespace": 1},
	} {
		objects, problems := Check(fs, "/k8s/overlays/"+overlay)
		for _, p := range problems {
			t.Errorf("%s: %s", overlay, p)
		}
		kinds := map[string]int{}
		for _, o := range objects {
			kinds[strings.SplitN(o.ID, "/", 2)[0]]++
		}
		for kind, n := range want {
			if kinds[kind] != n {
				t.Errorf("%s renders %d %s, want %d (all: %v)", overlay, kinds[kind], kind, n, kinds)
			}
		}
	}
}

// Each case breaks the manifests in one place; the check must name the object and
// the field.
func TestBrokenManifestsAreNamed(t *testing.T) {
	cases := []struct {
		name, overlay, file, old, new string
		object, field                 string
	}{
		{"unknown field", "dev", "base/read.yaml", "readinessProbe:", "readinessProbes:",
			"Deployment/mada-read", `unknown field "spec.template.spec.containers[0].readinessProbes"`},
		{"wrong type", "prod", "base/project.yaml", "replicas: 2", "replicas: two",
			"Deployment/mada-project", "spec.replicas"},
		{"not a quantity", "dev", "base/notify.yaml", "memory: 256Mi", "memory: lots",
			"Deployment/mada-notify", "spec.template.spec.containers[0].resources.limits.memory"},
		{"no memory limit", "dev", "base/migrate.yaml", "              memory: 256Mi\n", "",
			"Job/mada-migrate", "spec.template.spec.containers[mada].resources.limits.memory"},
		{"service selects nothing", "dev", "base/write.yaml",
			"selector:\n    app.kubernetes.io/name: mada\n    app.kubernetes.io/component: write",
			"selector:\n    app.kubernetes.io/name: mada\n    app.kubernetes.io/component: writer",
			"Service/mada-write", "spec.selector"},
		{"deployment without its service", "dev", "base/write.yaml",
			"selector:\n    app.kubernetes.io/name: mada\n    app.kubernetes.io/component: write",
			"selector:\n    app.kubernetes.io/name: mada\n    app.kubernetes.io/component: writer",
			"Deployment/mada-write", "no Service selects it"},
		{"pdb selects nothing", "prod", "base/notify.yaml",
			"      app.kubernetes.io/component: notify\n", "      app.kubernetes.io/component: notifier\n",
			"PodDisruptionBudget/mada-notify", "spec.selector"},
		{"overlay without the pod defaults", "dev", "overlays/dev/kustomization.yaml",
			"  - ../../components/pod-defaults\n", "",
			"Deployment/mada-project", "spec.template.spec.securityContext.runAsNonRoot"},
		{"root", "prod", "components/pod-defaults/pod-defaults.yaml", "runAsUser: 10001", "runAsUser: 0",
			"Deployment/mada-relay", "spec.template.spec.securityContext.runAsUser"},
		{"writable root filesystem", "prod", "components/pod-defaults/pod-defaults.yaml",
			"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
			"Job/mada-migrate", "containers[mada].securityContext.readOnlyRootFilesystem"},
		{"credential in the config map", "dev", "overlays/dev/kustomization.yaml",
			"      - MADA_PG_SCHEMA=mada_dev\n",
			"      - MADA_PG_SCHEMA=mada_dev\n      - DATABASE_URL=postgres://mada:hunter2@db/mada\n",
			"ConfigMap/mada-config", "data.DATABASE_URL"},
		{"credential in a literal", "dev", "base/read.yaml", "value: http://mada-write",
			"value: http://mada:hunter2@mada-write",
			"Deployment/mada-read", "env[MADA_WRITE_URL].value"},
		{"hpa targets nothing", "dev", "base/write.yaml", "kind: Deployment\n    name: mada-write",
			"kind: Deployment\n    name: mada-writer",
			"HorizontalPodAutoscaler/mada-write", "spec.scaleTargetRef"},
		{"replicas under an hpa", "prod", "base/read.yaml", "spec:\n  # No `replicas`", "spec:\n  replicas: 3\n  # No",
			"Deployment/mada-read", "spec.replicas"},
		{"probe on no port", "dev", "base/project.yaml", "path: /readyz\n              port: health",
			"path: /readyz\n              port: metrics",
			"Deployment/mada-project", "readinessProbe.httpGet.port"},
		{"probe on the wrong path", "prod", "components/kafka/relay.yaml", "path: /healthz", "path: /health",
			"Deployment/mada-relay", "livenessProbe.httpGet.path"},
		{"ingress to no service", "dev", "base/ingress.yaml", "name: mada-read", "name: mada-reader",
			"Ingress/mada", "backend.service.name"},
		{"latest image", "prod", "components/pod-defaults/kustomization.yaml", "newTag: 0.2.0", "newTag: latest",
			"Deployment/mada-write", "containers[mada].image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := manifests(t)
			path := "/k8s/" + c.file
			data, err := fs.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), c.old) {
				t.Fatalf("%s no longer contains %q: update the case", c.file, c.old)
			}
			broken := strings.Replace(string(data), c.old, c.new, 1)
			if err := fs.WriteFile(path, []byte(broken)); err != nil {
				t.Fatal(err)
			}
			_, problems := Check(fs, "/k8s/overlays/"+c.overlay)
			for _, p := range problems {
				// A generated ConfigMap's name ends with a hash of its content.
				named := p.Object == c.object || strings.HasPrefix(p.Object, c.object+"-")
				if named && strings.Contains(p.Field+": "+p.What, c.field) {
					return
				}
			}
			t.Errorf("no problem names %s and %q; got:", c.object, c.field)
			for _, p := range problems {
				t.Errorf("  %s", p)
			}
		})
	}
}

func TestASecretIsRefused(t *testing.T) {
	fs := manifests(t)
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mada-stores\nstringData:\n  DATABASE_URL: postgres://x\n"
	if err := fs.WriteFile("/k8s/overlays/dev/secret.yaml", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	k, _ := fs.ReadFile("/k8s/overlays/dev/kustomization.yaml")
	k = []byte(strings.Replace(string(k), "  - namespace.yaml\n", "  - namespace.yaml\n  - secret.yaml\n", 1))
	if err := fs.WriteFile("/k8s/overlays/dev/kustomization.yaml", k); err != nil {
		t.Fatal(err)
	}
	_, problems := Check(fs, "/k8s/overlays/dev")
	for _, p := range problems {
		if p.Object == "Secret/mada-stores" && strings.Contains(p.What, "no Secret in the repository") {
			return
		}
	}
	t.Errorf("a committed Secret passed: %v", problems)
}
