package main

import (
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// The API groups MADA's manifests may use; any other kind is a problem (a Secret
// among them: credentials are created in the cluster, never committed).
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme,
		corev1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // the scheme is static: this cannot fail at run time
		}
	}
	return s
}()

var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

var allowedKinds = map[string]bool{
	"Deployment": true, "Service": true, "Ingress": true, "HorizontalPodAutoscaler": true,
	"PodDisruptionBudget": true, "ConfigMap": true, "Job": true, "Namespace": true,
}

// "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
var typeError = regexp.MustCompile(`Go struct field [A-Za-z0-9]+\.(\S+) of type (\S+)`)

// decodeStrict decodes one object into its API type, refusing unknown fields,
// duplicate fields and values of the wrong type, with the field named.
func decodeStrict(id string, yaml []byte) (runtime.Object, *Problem) {
	kind := strings.SplitN(id, "/", 2)[0]
	if !allowedKinds[kind] {
		what := "this kind is not one MADA's manifests use"
		if kind == "Secret" {
			what = "no Secret in the repository: the operator creates it in the cluster"
		}
		return nil, &Problem{Object: id, What: what}
	}
	obj, _, err := strict.Decode(yaml, nil, nil)
	if err == nil {
		return obj, nil
	}
	if runtime.IsStrictDecodingError(err) {
		// "strict decoding error: unknown field \"spec.foo\", ..."
		msg := strings.TrimPrefix(err.Error(), "strict decoding error: ")
		return nil, &Problem{Object: id, What: msg}
	}
	if strings.Contains(err.Error(), "quantities must match") {
		if field, value := badQuantity(yaml); field != "" {
			return nil, &Problem{Object: id, Field: field, What: fmt.Sprintf("%q is not a quantity (like 500m, 2, 256Mi)", value)}
		}
	}
	if m := typeError.FindStringSubmatch(err.Error()); m != nil {
		return nil, &Problem{Object: id, Field: m[1], What: fmt.Sprintf("wrong type (the API wants %s): %v", m[2], err)}
	}
	return nil, &Problem{Object: id, What: err.Error()}
}

// badQuantity finds the field whose value is no quantity: the API's decoder says
// only that one is not.
func badQuantity(yaml []byte) (field, value string) {
	var doc any
	if sigsyaml.Unmarshal(yaml, &doc) != nil {
		return "", ""
	}
	var walk func(path string, v any, quantities bool) bool
	walk = func(path string, v any, quantities bool) bool {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				q := quantities || k == "requests" || k == "limits" || k == "sizeLimit"
				if walk(join(path, k), child, q) {
					return true
				}
			}
		case []any:
			for i, child := range v {
				if walk(fmt.Sprintf("%s[%d]", path, i), child, false) {
					return true
				}
			}
		case string:
			if _, err := resource.ParseQuantity(v); quantities && err != nil {
				field, value = path, v
				return true
			}
		}
		return false
	}
	walk("", doc, false)
	return field, value
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
