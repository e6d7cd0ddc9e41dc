// Command checker checks that a history of operations on an event store is
// linearizable, with Porcupine (github.com/anishathalye/porcupine) and a model of
// the store (model.go): appends with expected versions and command ids, stream
// reads, and log reads from a position that never skip.
//
//	checker [-timeout 60s] [-visualize out.html] history.json
//
// Exit status: 0 linearizable, 1 not linearizable, 2 undecided in time, 3 bad input.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

func main() {
	timeout := flag.Duration("timeout", time.Minute, "give up after this long (exit status 2)")
	visualize := flag.String("visualize", "", "write Porcupine's HTML view of the history here when it is not linearizable")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: checker [-timeout 60s] [-visualize out.html] history.json")
		os.Exit(3)
	}
	os.Exit(run(flag.Arg(0), *timeout, *visualize))
}

func run(path string, timeout time.Duration, visualize string) int {
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer file.Close()
	history, err := Read(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	started := time.Now()
	result, info := porcupine.CheckOperationsVerbose(Model, history.Porcupine(), timeout)
	fmt.Printf("%d operations: %s (%s)\n", len(history.Operations), result, time.Since(started).Round(time.Millisecond))
	switch result {
	case porcupine.Ok:
		return 0
	case porcupine.Illegal:
		if visualize != "" {
			if err := porcupine.VisualizePath(Model, info, visualize); err != nil {
				fmt.Fprintln(os.Stderr, "visualization:", err)
			} else {
				fmt.Println("visualization:", visualize)
			}
		}
		return 1
	default:
		return 2
	}
}
