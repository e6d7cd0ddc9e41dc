// Command check validates MADA's deployment files offline, with no cluster and no
// Docker engine:
//
//   - Kubernetes overlays: rendered with kustomize, every object decoded strictly
//     against the Kubernetes API types (unknown fields and wrong types are errors),
//     then held to MADA's rules (probes, limits, a non-root user, labels that
//     match, no credentials in the repository);
//   - the Dockerfile: BuildKit's own lint rules, then MADA's (pinned bases, a
//     numeric non-root user, exec-form CMD, ...);
//   - docker-compose.yml: loaded by compose-go against the Compose specification,
//     then MADA's rules (every role, hardened, after the migrations; official,
//     pinned, healthy servers; credentials only from variables).
//
// Usage, from the repository's root:
//
//	go run ./deploy/check                       # all of the above
//	go run ./deploy/check k8s DIR...            # overlays
//	go run ./deploy/check dockerfile FILE
//	go run ./deploy/check compose FILE
//	go run ./deploy/check render DIR            # print what an overlay renders
//
// Each problem is printed as "<file or overlay>: <object>: <field>: <what>"; the exit
// status is 1 if there is any.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		root := repositoryRoot()
		args = []string{"all", root}
	}
	failed := false
	report := func(where string, count int, problems []Problem) {
		for _, p := range problems {
			fmt.Printf("%s: %s\n", where, p)
		}
		if len(problems) > 0 {
			failed = true
		} else if count >= 0 {
			fmt.Printf("%s: %d objects, valid\n", where, count)
		} else {
			fmt.Printf("%s: valid\n", where)
		}
	}
	fs := filesys.MakeFsOnDisk()
	overlays := func(dirs []string) {
		for _, dir := range dirs {
			objects, problems := Check(fs, dir)
			report(dir, len(objects), problems)
		}
	}
	file := func(path string, check func(string, []byte) []Problem) {
		data, err := os.ReadFile(path)
		if err != nil {
			report(path, -1, []Problem{{Object: path, What: err.Error()}})
			return
		}
		report(path, -1, check(path, data))
	}
	switch args[0] {
	case "all":
		root := args[len(args)-1]
		overlays([]string{
			filepath.Join(root, "deploy/k8s/overlays/dev"),
			filepath.Join(root, "deploy/k8s/overlays/prod"),
		})
		file(filepath.Join(root, "deploy/Dockerfile"), CheckDockerfile)
		file(filepath.Join(root, "docker-compose.yml"), CheckCompose)
	case "k8s":
		overlays(args[1:])
	case "dockerfile":
		for _, path := range args[1:] {
			file(path, CheckDockerfile)
		}
	case "compose":
		for _, path := range args[1:] {
			file(path, CheckCompose)
		}
	case "render":
		for _, dir := range args[1:] {
			rendered, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
				os.Exit(1)
			}
			yaml, err := rendered.AsYaml()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
				os.Exit(1)
			}
			os.Stdout.Write(yaml)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: check [k8s DIR... | dockerfile FILE... | compose FILE... | render DIR...]")
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// repositoryRoot finds the directory holding deploy/ from the working directory
// (the repository's root, or deploy/check itself).
func repositoryRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "deploy", "k8s")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
