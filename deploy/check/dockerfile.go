package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// CheckDockerfile lints a Dockerfile with BuildKit's own rules (those `docker build
// --check` runs while parsing, the experimental ones included), then MADA's: base
// images pinned, a numeric non-root user in the final stage, CMD and ENTRYPOINT in
// exec form (so SIGTERM reaches the binary and it drains), apt without recommends
// and without its lists, no credential in ENV or ARG, no ADD from a URL.
func CheckDockerfile(name string, data []byte) []Problem {
	var problems []Problem
	at := func(line int) string { return fmt.Sprintf("%s:%d", name, line) }
	parsed, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return []Problem{{Object: name, What: err.Error()}}
	}
	for _, w := range parsed.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		problems = append(problems, Problem{Object: at(line), Field: "parser", What: w.Short})
	}
	lint := linter.New(&linter.Config{
		ExperimentalAll: true,
		Warn: func(rule, _, url, message string, location []parser.Range) {
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			problems = append(problems, Problem{Object: at(line), Field: rule, What: message + " (" + url + ")"})
		},
	})
	stages, _, err := instructions.Parse(parsed.AST, lint)
	if err != nil {
		return append(problems, Problem{Object: name, What: err.Error()})
	}
	if len(stages) == 0 {
		return append(problems, Problem{Object: name, What: "no stage"})
	}
	names := map[string]bool{}
	for i, stage := range stages {
		line := stage.Location[0].Start.Line
		if !names[strings.ToLower(stage.BaseName)] {
			problems = append(problems, pinned(at(line), stage.BaseName)...)
		}
		names[strings.ToLower(stage.Name)] = true
		final := i == len(stages)-1
		user := ""
		for _, command := range stage.Commands {
			line := command.Location()[0].Start.Line
			switch c := command.(type) {
			case *instructions.UserCommand:
				user = c.User
			case *instructions.CmdCommand:
				if c.PrependShell {
					problems = append(problems, Problem{Object: at(line), Field: "CMD", What: "use the exec form ([\"...\"]): under a shell, SIGTERM does not reach the binary"})
				}
			case *instructions.EntrypointCommand:
				if c.PrependShell {
					problems = append(problems, Problem{Object: at(line), Field: "ENTRYPOINT", What: "use the exec form ([\"...\"]): under a shell, SIGTERM does not reach the binary"})
				}
			case *instructions.RunCommand:
				problems = append(problems, apt(at(line), strings.Join(c.CmdLine, " "))...)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if credentialName.MatchString(kv.Key) || urlWithPassword.MatchString(kv.Value) {
						problems = append(problems, Problem{Object: at(line), Field: "ENV " + kv.Key, What: "a credential in the image: pass it at run time"})
					}
				}
			case *instructions.ArgCommand:
				for _, arg := range c.Args {
					if credentialName.MatchString(arg.Key) {
						problems = append(problems, Problem{Object: at(line), Field: "ARG " + arg.Key, What: "a build argument stays in the image's history: use a build secret"})
					}
				}
			case *instructions.AddCommand:
				for _, source := range c.SourcePaths {
					if strings.Contains(source, "://") {
						problems = append(problems, Problem{Object: at(line), Field: "ADD", What: "a download at build time: fetch it in a RUN with a checksum, or COPY it"})
					}
				}
			}
		}
		if final && !numericNonRoot.MatchString(user) {
			what := "no USER: the container would run as root"
			if user != "" {
				what = fmt.Sprintf("USER %q: give a numeric, non-root uid (Kubernetes' runAsNonRoot can only verify a number)", user)
			}
			problems = append(problems, Problem{Object: at(line), Field: "USER", What: what})
		}
	}
	return problems
}

// "10001" or "10001:10001", not 0.
var numericNonRoot = regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`)

// pinned checks that a base image names a release: a tag other than latest, or a
// digest.
func pinned(at, image string) []Problem {
	if strings.Contains(image, "@sha256:") || image == "scratch" {
		return nil
	}
	colon := strings.LastIndex(image, ":")
	if colon < 0 || strings.Contains(image[colon:], "/") {
		return []Problem{{Object: at, Field: "FROM", What: fmt.Sprintf("%q has no tag: name a release", image)}}
	}
	if image[colon+1:] == "latest" {
		return []Problem{{Object: at, Field: "FROM", What: fmt.Sprintf("%q: `latest` is not a release", image)}}
	}
	return nil
}

// apt checks an apt-get install: no recommended packages, lists removed in the same
// layer.
func apt(at, run string) []Problem {
	if !strings.Contains(run, "apt-get install") {
		return nil
	}
	var problems []Problem
	if !strings.Contains(run, "--no-install-recommends") {
		problems = append(problems, Problem{Object: at, Field: "RUN", What: "apt-get install without --no-install-recommends"})
	}
	if !strings.Contains(run, "rm -rf /var/lib/apt/lists") {
		problems = append(problems, Problem{Object: at, Field: "RUN", What: "apt's lists stay in the layer: rm -rf /var/lib/apt/lists/* in the same RUN"})
	}
	return problems
}
