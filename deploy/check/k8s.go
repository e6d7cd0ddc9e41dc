package main

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered Kubernetes object, decoded into its API type.
type Object struct {
	// ID names the object as the problems do: "Kind/name".
	ID string
	// Namespace is the object's namespace ("" for a cluster-scoped one).
	Namespace string
	// Value is the typed object (*appsv1.Deployment, *corev1.Service, ...).
	Value runtime.Object
}

// Problem is one thing wrong with an overlay: the object, the field and what.
type Problem struct {
	Object string
	Field  string
	What   string
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.Object, p.What)
	}
	return fmt.Sprintf("%s: %s: %s", p.Object, p.Field, p.What)
}

// Check renders the kustomization in dir and validates what it renders: every
// object decoded strictly, then every rule of rules.go. It returns the decoded
// objects and the problems, sorted.
func Check(fs filesys.FileSystem, dir string) ([]Object, []Problem) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rendered, err := k.Run(fs, dir)
	if err != nil {
		return nil, []Problem{{Object: "kustomization " + dir, What: err.Error()}}
	}
	var objects []Object
	var problems []Problem
	for _, r := range rendered.Resources() {
		id := r.GetKind() + "/" + r.GetName()
		yaml, err := r.AsYAML()
		if err != nil {
			problems = append(problems, Problem{Object: id, What: err.Error()})
			continue
		}
		value, problem := decodeStrict(id, yaml)
		if problem != nil {
			problems = append(problems, *problem)
			continue
		}
		objects = append(objects, Object{ID: id, Namespace: r.GetNamespace(), Value: value})
	}
	problems = append(problems, checkRules(objects)...)
	sort.SliceStable(problems, func(i, j int) bool {
		return problems[i].String() < problems[j].String()
	})
	return objects, problems
}
