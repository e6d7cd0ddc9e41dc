// Command checker checks that a history of operations on an event store is
// linearizable, with Porcupine (github.com/anishathalye/porcupine) and a model of
// the store (model.go): appends with expected versions and command ids, stream
// reads, and log reads from a position that never skip.
//
//	checker [-split] [-timeout 60s] [-visualize out.html] history.json
//
// With -split, the history is checked in parts (split.go): each stream, and the
// log; for histories too large or too concurrent to search whole.
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
	splitParts := flag.Bool("split", false, "check each stream and the log on their own (see split.go)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: checker [-split] [-timeout 60s] [-visualize out.html] history.json")
		os.Exit(3)
	}
	model := Model
	if *splitParts {
		model = SplitModel
	}
	os.Exit(run(model, flag.Arg(0), *timeout, *visualize))
}

func run(model porcupine.Model, path string, timeout time.Duration, visualize string) int {
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
	result, info := porcupine.CheckOperationsVerbose(model, history.Porcupine(), timeout)
	fmt.Printf("%d operations: %s (%s)\n", len(history.Operations), result, time.Since(started).Round(time.Millisecond))
	switch result {
	case porcupine.Ok:
		return 0
	case porcupine.Illegal:
		if visualize != "" {
			if err := porcupine.VisualizePath(model, info, visualize); err != nil {
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
