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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names of settings that carry a credential: they come from a Secret, never from a
// literal in a manifest or a ConfigMap.
var credentialName = regexp.MustCompile(`(?i)(secret|password|credential|private_?key)|^(DATABASE_URL|MONGODB_URL|REDIS_URL)$`)

// A URL with a password in it ("postgres://user:pw@host").
var urlWithPassword = regexp.MustCompile(`://[^/@\s:]+:[^/@\s]+@`)

// rules holds what the rules look up across objects.
type rules struct {
	problems    []Problem
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  map[string]bool
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

func (r *rules) add(id, field, format string, args ...any) {
	r.problems = append(r.problems, Problem{Object: id, Field: field, What: fmt.Sprintf(format, args...)})
}

// checkRules holds the decoded objects to MADA's own rules.
func checkRules(objects []Object) []Problem {
	r := &rules{configMaps: map[string]bool{}}
	namespaces := map[string]bool{}
	for _, o := range objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, v)
		case *corev1.Service:
			r.services = append(r.services, v)
		case *corev1.ConfigMap:
			r.configMaps[v.Name] = true
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas = append(r.hpas, v)
		}
		if _, ok := o.Value.(*corev1.Namespace); !ok {
			namespaces[o.Namespace] = true
			if o.Namespace == "" {
				r.add(o.ID, "metadata.namespace", "missing: an overlay sets the namespace")
			}
		}
	}
	if len(namespaces) > 1 {
		r.add("kustomization", "metadata.namespace", "objects in several namespaces: %v", keys(namespaces))
	}
	for _, o := range objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			r.deployment(o.ID, v)
		case *batchv1.Job:
			r.job(o.ID, v)
		case *corev1.Service:
			r.service(o.ID, v)
		case *corev1.ConfigMap:
			r.configMap(o.ID, v)
		case *policyv1.PodDisruptionBudget:
			r.pdb(o.ID, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpa(o.ID, v)
		case *networkingv1.Ingress:
			r.ingress(o.ID, v)
		}
	}
	return r.problems
}

func (r *rules) deployment(id string, d *appsv1.Deployment) {
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
		r.add(id, "spec.selector", "missing")
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		r.add(id, "spec.selector", "%v", err)
	} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		r.add(id, "spec.template.metadata.labels", "do not match spec.selector %v", sel)
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 1 {
		r.add(id, "spec.replicas", "%d: at least 1", *d.Spec.Replicas)
	}
	for _, h := range r.hpas {
		if d.Spec.Replicas != nil && h.Namespace == d.Namespace && h.Spec.ScaleTargetRef.Name == d.Name {
			r.add(id, "spec.replicas", "set, but HorizontalPodAutoscaler/%s owns it: every apply would reset the count", h.Name)
		}
	}
	r.pod(id, &d.Spec.Template.Spec, true)
	covering := 0
	for _, p := range r.pdbs {
		if selects(p.Namespace, p.Spec.Selector, d) {
			covering++
		}
	}
	if covering != 1 {
		r.add(id, "spec.template.metadata.labels", "selected by %d PodDisruptionBudgets: exactly 1 wanted", covering)
	}
	if port := containerPort(&d.Spec.Template.Spec, intstr.FromString("http")); port != nil {
		served := false
		for _, s := range r.services {
			if s.Namespace == d.Namespace && len(s.Spec.Selector) > 0 &&
				labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				served = true
			}
		}
		if !served {
			r.add(id, "spec.template.metadata.labels", "has an `http` port but no Service selects it")
		}
	}
}

func (r *rules) job(id string, j *batchv1.Job) {
	if j.Spec.BackoffLimit == nil {
		r.add(id, "spec.backoffLimit", "missing: a failing migration would retry 6 times by default, unnoticed")
	}
	if j.Spec.TTLSecondsAfterFinished == nil {
		r.add(id, "spec.ttlSecondsAfterFinished", "missing: the next release could not create its Job")
	}
	if j.Spec.ActiveDeadlineSeconds == nil {
		r.add(id, "spec.activeDeadlineSeconds", "missing: a stuck migration would run forever")
	}
	r.pod(id, &j.Spec.Template.Spec, false)
}

// pod holds a pod template to the rules every MADA pod meets; long-running ones
// (Deployments) also have probes.
func (r *rules) pod(id string, spec *corev1.PodSpec, longRunning bool) {
	const at = "spec.template.spec"
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		r.add(id, at+".automountServiceAccountToken", "must be false: MADA never calls the Kubernetes API")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		r.add(id, at+".securityContext.runAsNonRoot", "must be true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		r.add(id, at+".securityContext.seccompProfile.type", "must be RuntimeDefault")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		r.add(id, at+".securityContext.runAsUser", "0 is root")
	}
	if len(spec.Containers) == 0 {
		r.add(id, at+".containers", "none")
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range all {
		c := &all[i]
		field := fmt.Sprintf("%s.containers[%s]", at, c.Name)
		if i < len(spec.InitContainers) {
			field = fmt.Sprintf("%s.initContainers[%s]", at, c.Name)
		}
		r.container(id, field, spec, c, longRunning && i >= len(spec.InitContainers))
	}
}

func (r *rules) container(id, field string, spec *corev1.PodSpec, c *corev1.Container, probes bool) {
	image := c.Image
	if at := strings.LastIndex(image, "@"); at >= 0 {
		image = image[:at]
	} else if colon := strings.LastIndex(image, ":"); colon < 0 || strings.Contains(image[colon:], "/") {
		r.add(id, field+".image", "%q has no tag: name a release", c.Image)
	} else if image[colon+1:] == "latest" {
		r.add(id, field+".image", "%q: `latest` is not a release", c.Image)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[res]
		lim, hasLim := c.Resources.Limits[res]
		if !hasReq {
			r.add(id, field+".resources.requests."+string(res), "missing")
		}
		if !hasLim {
			r.add(id, field+".resources.limits."+string(res), "missing")
		}
		if hasReq && hasLim && lim.Cmp(req) < 0 {
			r.add(id, field+".resources.limits."+string(res), "%s is below the request %s", lim.String(), req.String())
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		r.add(id, field+".securityContext.readOnlyRootFilesystem", "must be true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		r.add(id, field+".securityContext.allowPrivilegeEscalation", "must be false")
	}
	if sc == nil || sc.Capabilities == nil || !dropsAll(sc.Capabilities.Drop) {
		r.add(id, field+".securityContext.capabilities.drop", "must contain ALL")
	}
	if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		r.add(id, field+".securityContext.runAsUser", "0 is root")
	}
	if sc != nil && sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		r.add(id, field+".securityContext.runAsNonRoot", "must not be false")
	}
	for _, e := range c.Env {
		f := fmt.Sprintf("%s.env[%s]", field, e.Name)
		if e.ValueFrom == nil && (credentialName.MatchString(e.Name) || urlWithPassword.MatchString(e.Value)) {
			r.add(id, f+".value", "a credential: take it from a Secret (valueFrom.secretKeyRef)")
		}
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && !r.configMaps[e.ValueFrom.ConfigMapKeyRef.Name] {
			r.add(id, f+".valueFrom.configMapKeyRef.name", "no ConfigMap %q in the overlay", e.ValueFrom.ConfigMapKeyRef.Name)
		}
	}
	for i, e := range c.EnvFrom {
		if e.ConfigMapRef != nil && !r.configMaps[e.ConfigMapRef.Name] {
			r.add(id, fmt.Sprintf("%s.envFrom[%d].configMapRef.name", field, i), "no ConfigMap %q in the overlay", e.ConfigMapRef.Name)
		}
	}
	if !probes {
		return
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		f := field + "." + p.name
		switch {
		case p.probe == nil:
			r.add(id, f, "missing")
		case p.probe.HTTPGet == nil:
			r.add(id, f+".httpGet", "missing: MADA answers %s over HTTP", p.path)
		case p.probe.HTTPGet.Path != p.path:
			r.add(id, f+".httpGet.path", "%q: MADA answers %s", p.probe.HTTPGet.Path, p.path)
		case containerPort(spec, p.probe.HTTPGet.Port) == nil:
			r.add(id, f+".httpGet.port", "%s is no port of the pod's containers", p.probe.HTTPGet.Port.String())
		}
	}
}

func (r *rules) service(id string, s *corev1.Service) {
	if len(s.Spec.Selector) == 0 {
		r.add(id, "spec.selector", "missing")
		return
	}
	sel := labels.SelectorFromSet(s.Spec.Selector)
	var matched []*appsv1.Deployment
	for _, d := range r.deployments {
		if d.Namespace == s.Namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			matched = append(matched, d)
		}
	}
	if len(matched) != 1 {
		r.add(id, "spec.selector", "%v selects the pods of %d Deployments: exactly 1 wanted", sel, len(matched))
		return
	}
	for _, p := range s.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		if containerPort(&matched[0].Spec.Template.Spec, target) == nil {
			r.add(id, fmt.Sprintf("spec.ports[%s].targetPort", p.Name), "%s is no port of Deployment/%s", target.String(), matched[0].Name)
		}
	}
}

func (r *rules) configMap(id string, c *corev1.ConfigMap) {
	for k, v := range c.Data {
		if credentialName.MatchString(k) || urlWithPassword.MatchString(v) {
			r.add(id, "data."+k, "a credential: put it in a Secret, created in the cluster")
		}
	}
}

func (r *rules) pdb(id string, p *policyv1.PodDisruptionBudget) {
	var matched []*appsv1.Deployment
	for _, d := range r.deployments {
		if selects(p.Namespace, p.Spec.Selector, d) {
			matched = append(matched, d)
		}
	}
	if len(matched) != 1 {
		r.add(id, "spec.selector", "selects the pods of %d Deployments: exactly 1 wanted", len(matched))
		return
	}
	switch {
	case p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil:
		r.add(id, "spec.maxUnavailable", "missing (or spec.minAvailable)")
	case p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int:
		replicas := int32(1)
		if matched[0].Spec.Replicas != nil {
			replicas = *matched[0].Spec.Replicas
		}
		if p.Spec.MinAvailable.IntVal >= replicas {
			r.add(id, "spec.minAvailable", "%d of %d replicas: no node could ever be drained", p.Spec.MinAvailable.IntVal, replicas)
		}
	}
}

func (r *rules) hpa(id string, h *autoscalingv2.HorizontalPodAutoscaler) {
	ref := h.Spec.ScaleTargetRef
	var target *appsv1.Deployment
	for _, d := range r.deployments {
		if d.Namespace == h.Namespace && d.Name == ref.Name {
			target = d
		}
	}
	if ref.Kind != "Deployment" || target == nil {
		r.add(id, "spec.scaleTargetRef", "%s/%s is no Deployment of the overlay", ref.Kind, ref.Name)
		return
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
		r.add(id, "spec.minReplicas", "missing or below 1")
	} else if *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		r.add(id, "spec.maxReplicas", "%d is below spec.minReplicas %d", h.Spec.MaxReplicas, *h.Spec.MinReplicas)
	}
	if len(h.Spec.Metrics) == 0 {
		r.add(id, "spec.metrics", "missing")
	}
	for _, m := range h.Spec.Metrics {
		if m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
			continue
		}
		for _, c := range target.Spec.Template.Spec.Containers {
			if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
				r.add(id, "spec.metrics", "utilization of %s, but Deployment/%s's container %s requests none", m.Resource.Name, target.Name, c.Name)
			}
		}
	}
}

func (r *rules) ingress(id string, ing *networkingv1.Ingress) {
	for i, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for j, path := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d].backend.service", i, j)
			b := path.Backend.Service
			if b == nil {
				r.add(id, field, "missing")
				continue
			}
			var svc *corev1.Service
			for _, s := range r.services {
				if s.Namespace == ing.Namespace && s.Name == b.Name {
					svc = s
				}
			}
			if svc == nil {
				r.add(id, field+".name", "no Service %q in the overlay", b.Name)
				continue
			}
			found := false
			for _, p := range svc.Spec.Ports {
				if (b.Port.Name != "" && p.Name == b.Port.Name) || (b.Port.Name == "" && p.Port == b.Port.Number) {
					found = true
				}
			}
			if !found {
				r.add(id, field+".port", "Service/%s has no such port", svc.Name)
			}
		}
	}
}

// selects tells whether a selector in namespace ns selects a Deployment's pods.
func selects(ns string, selector *metav1.LabelSelector, d *appsv1.Deployment) bool {
	if selector == nil || d.Namespace != ns {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	return err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels))
}

// containerPort finds the container port a probe or a Service names, by name or
// number.
func containerPort(spec *corev1.PodSpec, port intstr.IntOrString) *corev1.ContainerPort {
	for i := range spec.Containers {
		for j := range spec.Containers[i].Ports {
			p := &spec.Containers[i].Ports[j]
			if (port.Type == intstr.String && p.Name == port.StrVal) ||
				(port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return p
			}
		}
	}
	return nil
}

func dropsAll(drop []corev1.Capability) bool {
	for _, c := range drop {
		if c == "ALL" {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
