package main

import (
	"slices"

	"github.com/anishathalye/porcupine"
)

// SplitModel checks a history in parts Porcupine can search one at a time: each
// stream on its own (its appends, conflicts, command ids and reads, versions only),
// and the log on its own (the events appended and the log reads, positions only).
// Each part is a projection of the whole store, so a history this rejects is not
// linearizable; one it accepts might still be, through an order that no single
// part shows (a stream read and a log read disagreeing on what came first). What it
// gains is scale: the whole model's search grows with every pair of concurrent
// operations that commute, which hundreds of concurrent clients make many.
//
// Command ids must be reused on their own stream only.
var SplitModel = porcupine.Model{
	Partition: split,
	Init:      Model.Init,
	Step:      Model.Step,
	Equal:     Model.Equal,
	Hash:      Model.Hash,

	DescribeOperation: Model.DescribeOperation,
	DescribeState:     Model.DescribeState,
}

func split(history []porcupine.Operation) [][]porcupine.Operation {
	streams := map[string][]porcupine.Operation{}
	var log []porcupine.Operation
	for _, op := range history {
		in := op.Input.(Input)
		out := op.Output.(Output)
		switch in.Op {
		case "read_all":
			in.Part = "log"
			op.Input = in
			log = append(log, op)
		case "read_stream":
			in.Part = "stream"
			op.Input = in
			streams[in.Stream] = append(streams[in.Stream], op)
		case "append":
			if out.Status == "ok" && len(in.Events) > 0 {
				logged := op
				logIn := in
				logIn.Part = "log"
				logged.Input = logIn
				log = append(log, logged)
			}
			in.Part = "stream"
			op.Input = in
			streams[in.Stream] = append(streams[in.Stream], op)
		}
	}
	parts := [][]porcupine.Operation{log}
	names := make([]string, 0, len(streams))
	for name := range streams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		parts = append(parts, streams[name])
	}
	return parts
}

// stepStreamAppend is an append seen from its stream: versions and command ids.
func stepStreamAppend(s State, in Input, out Output) (bool, interface{}) {
	if in.Command != "" {
		if earlier, ok := s.Commands[in.Command]; ok {
			return out.Status == "duplicate" && out.Previous == earlier.Previous &&
				out.Version == earlier.Version && out.Position == earlier.Position, s
		}
	}
	current := int64(len(s.Streams[in.Stream]))
	if in.Expected != nil && *in.Expected != current {
		return out.Status == "conflict" && out.Version == current, s
	}
	n := int64(len(in.Events))
	if out.Status != "ok" || out.Previous != current || out.Version != current+n {
		return false, s
	}
	next := State{Streams: s.Streams, Log: s.Log, ReadHigh: s.ReadHigh, Commands: s.Commands}
	if n > 0 {
		next.Streams = cloneMap(s.Streams)
		next.Streams[in.Stream] = append(slices.Clone(s.Streams[in.Stream]), in.Events...)
	}
	if in.Command != "" {
		next.Commands = cloneMap(s.Commands)
		next.Commands[in.Command] = Output{Previous: out.Previous, Version: out.Version, Position: out.Position}
	}
	return true, next
}

// stepLogAppend is a successful append seen from the log: its events take their
// positions, none a reader already went past.
func stepLogAppend(s State, in Input, out Output) (bool, interface{}) {
	n := int64(len(in.Events))
	first := out.Position - n + 1
	if first <= s.ReadHigh {
		return false, s
	}
	entries := make([]Entry, 0, n)
	for i, id := range in.Events {
		p := first + int64(i)
		if _, taken := slices.BinarySearchFunc(s.Log, p, byPosition); taken {
			return false, s
		}
		entries = append(entries, Entry{Position: p, Event: id})
	}
	return true, State{Streams: s.Streams, Log: mergeLog(s.Log, entries), ReadHigh: s.ReadHigh, Commands: s.Commands}
}
