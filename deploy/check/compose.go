package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// The roles docker-compose.yml must run, as `mada` subcommands.
var composeRoles = []string{"migrate", "write", "read", "project", "relay", "notify"}

// The servers, from their official images.
var composeServers = map[string]string{
	"postgres": "postgres", "mongo": "mongo", "redis": "redis", "kafka": "apache/kafka",
}

var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// Names of settings that are secrets in themselves.
var secretName = regexp.MustCompile(`(?i)secret|password|credential|private_?key`)

// CheckCompose loads a Compose file as Docker Compose does (compose-go: the
// specification's schema, so unknown keys and wrong types are errors, then
// interpolation and normalization), with a placeholder for every variable it
// names, then holds it to MADA's rules: every role, from the one image, read-only,
// without capabilities or privilege escalation, after the migrations; the servers
// from their official images, pinned and with health checks; credentials only from
// variables, never written in the file.
func CheckCompose(path string, data []byte) []Problem {
	env := map[string]string{}
	for _, m := range variable.FindAllStringSubmatch(string(data), -1) {
		env[m[1]] = "placeholder"
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: data}},
		Environment: env,
	}
	load := func(raw bool) (*types.Project, error) {
		return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
			o.SetProjectName("mada", false)
			o.SkipInterpolation = raw
			o.SkipResolveEnvironment = raw
			o.Profiles = []string{"*"}
		})
	}
	if _, err := load(false); err != nil {
		return []Problem{{Object: path, What: err.Error()}}
	}
	// The rules read the values as written: a credential must be a variable.
	project, err := load(true)
	if err != nil {
		return []Problem{{Object: path, What: err.Error()}}
	}
	var problems []Problem
	add := func(service, field, format string, args ...any) {
		problems = append(problems, Problem{Object: "service " + service, Field: field, What: fmt.Sprintf(format, args...)})
	}
	roles := map[string]bool{}
	for name, s := range project.Services {
		for key, value := range s.Environment {
			if value == nil {
				continue
			}
			// A secret is a variable; a URL may be written out, not its password
			// (MongoDB and Redis run without one here, on the Compose network only).
			if (secretName.MatchString(key) && !strings.Contains(*value, "${")) ||
				!passwordIsVariable(*value) {
				add(name, "environment."+key, "a credential written in the file: take it from a variable (${...})")
			}
		}
		if official, ok := composeServers[name]; ok {
			image, tag, _ := strings.Cut(s.Image, ":")
			if image != official {
				add(name, "image", "%q: use the official image %q", s.Image, official)
			}
			if tag == "" || tag == "latest" {
				add(name, "image", "%q: name a release", s.Image)
			}
			if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
				add(name, "healthcheck", "missing: the roles wait for the servers to be healthy")
			}
			continue
		}
		if !strings.HasPrefix(s.Image, "mada:") {
			add(name, "image", "%q: MADA's services run the one image `mada:<version>`", s.Image)
			continue
		}
		if len(s.Command) == 0 {
			add(name, "command", "missing: a role (%s)", strings.Join(composeRoles, ", "))
			continue
		}
		role := s.Command[0]
		if role == "serve" {
			role = roleOf(s)
		}
		roles[role] = true
		if !s.ReadOnly {
			add(name, "read_only", "must be true (a writable /tmp is a tmpfs)")
		}
		if !contains(s.CapDrop, "ALL") {
			add(name, "cap_drop", "must contain ALL")
		}
		if !contains(s.SecurityOpt, "no-new-privileges:true") {
			add(name, "security_opt", "must contain no-new-privileges:true")
		}
		if role == "migrate" {
			continue
		}
		if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			add(name, "depends_on.migrate", "must wait for the migrations (condition: service_completed_successfully)")
		}
		if s.Restart == "" || s.Restart == "no" {
			add(name, "restart", "a long-running role restarts (unless-stopped)")
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].String() < problems[j].String() })
	for _, role := range composeRoles {
		if !roles[role] {
			problems = append(problems, Problem{Object: path, Field: "services", What: fmt.Sprintf("no service runs the role %q", role)})
		}
	}
	return problems
}

// The serve role a service's MADA_ROLE names: "write", "read", or "all".
func roleOf(s types.ServiceConfig) string {
	if v, ok := s.Environment["MADA_ROLE"]; ok && v != nil {
		return *v
	}
	return "all"
}

// passwordIsVariable tells whether a URL's password, if it has one, is a ${...}
// variable.
func passwordIsVariable(value string) bool {
	i := strings.Index(value, "://")
	if i < 0 {
		return true
	}
	userinfo, _, found := strings.Cut(value[i+3:], "@")
	if !found {
		return true
	}
	_, password, hasPassword := strings.Cut(userinfo, ":")
	return !hasPassword || strings.HasPrefix(password, "${")
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}
