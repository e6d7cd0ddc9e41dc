// Command check renders kustomize overlays and validates them offline: every object
// is decoded strictly against the Kubernetes API types (unknown fields and wrong
// types are errors), then held to MADA's own rules (probes, limits, a non-root user,
// labels that match, no credentials in the repository). It needs no cluster.
//
//	go run ./deploy/k8s/check deploy/k8s/overlays/dev deploy/k8s/overlays/prod
//
// With -render, it prints what an overlay renders instead (as `kubectl kustomize`
// would), without checking it.
//
// Each problem is printed as "<overlay>: <Kind>/<name>: <field>: <what is wrong>";
// the exit status is 1 if there is any.
package main

import (
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	render := flag.Bool("render", false, "print what each overlay renders instead of checking it")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: check [-render] OVERLAY_DIR...")
		os.Exit(2)
	}
	fs := filesys.MakeFsOnDisk()
	if *render {
		for _, dir := range flag.Args() {
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
		return
	}
	failed := false
	for _, dir := range flag.Args() {
		objects, problems := Check(fs, dir)
		for _, p := range problems {
			fmt.Printf("%s: %s\n", dir, p)
		}
		if len(problems) > 0 {
			failed = true
			continue
		}
		fmt.Printf("%s: %d objects, valid\n", dir, len(objects))
	}
	if failed {
		os.Exit(1)
	}
}
