package main

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// State is the event store as the model sees it. Steps never change a state; they
// return a new one.
type State struct {
	// Streams holds each stream's event ids, in version order.
	Streams map[string][]string
	// Log holds every appended event, in position order.
	Log []Entry
	// ReadHigh is the highest position a read of the log has returned. No append
	// may take a position at or below it later: a reader that went past a position
	// never comes back for it (positions never skip).
	ReadHigh int64
	// Commands holds the result of each command id handled.
	Commands map[string]Output
}

func initial() State {
	return State{Streams: map[string][]string{}, Commands: map[string]Output{}}
}

// Model is the sequential specification of an event store with expected
// versions, command ids, stream reads and log reads from a position.
var Model = porcupine.Model{
	Init: func() interface{} { return initial() },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		return step(state.(State), input.(Input), output.(Output))
	},
	Equal: func(a, b interface{}) bool { return equal(a.(State), b.(State)) },
	Hash:  func(s interface{}) uint64 { return hash(s.(State)) },
	DescribeOperation: func(input, output interface{}) string {
		return describe(input.(Input), output.(Output))
	},
	DescribeState: func(s interface{}) string {
		st := s.(State)
		return fmt.Sprintf("%d streams, %d events, read up to %d", len(st.Streams), len(st.Log), st.ReadHigh)
	},
}

func step(s State, in Input, out Output) (bool, interface{}) {
	switch in.Op {
	case "append":
		switch in.Part {
		case "stream":
			return stepStreamAppend(s, in, out)
		case "log":
			return stepLogAppend(s, in, out)
		}
		return stepAppend(s, in, out)
	case "read_stream":
		return stepReadStream(s, in, out), s
	case "read_all":
		return stepReadAll(s, in, out)
	}
	return false, s
}

// stepAppend is an append on the whole store: its stream's versions and command
// ids (stepStreamAppend), then, if it wrote events, their positions in the log
// (stepLogAppend).
func stepAppend(s State, in Input, out Output) (bool, interface{}) {
	ok, next := stepStreamAppend(s, in, out)
	if !ok || out.Status != "ok" {
		return ok, next
	}
	if len(in.Events) == 0 {
		return out.Position == 0, next
	}
	return stepLogAppend(next.(State), in, out)
}

// A read of a stream returns its events after version `After` (all of them from 0).
func stepReadStream(s State, in Input, out Output) bool {
	events := s.Streams[in.Stream]
	if in.After >= int64(len(events)) {
		return len(out.Events) == 0
	}
	return slices.Equal(events[in.After:], out.Events)
}

// A read of the log returns, in position order, every event after `After` up to
// the last one it returns: no hole. It may stop short of the newest events (a store
// holds back positions that an open transaction could still fill).
func stepReadAll(s State, in Input, out Output) (bool, interface{}) {
	if len(out.Log) == 0 {
		return true, s
	}
	if in.Limit > 0 && len(out.Log) > in.Limit {
		return false, s
	}
	last := out.Log[len(out.Log)-1].Position
	start, _ := slices.BinarySearchFunc(s.Log, in.After+1, byPosition)
	end, found := slices.BinarySearchFunc(s.Log, last, byPosition)
	if !found || !slices.Equal(s.Log[start:end+1], out.Log) {
		return false, s
	}
	if last <= s.ReadHigh {
		return true, s
	}
	return true, State{Streams: s.Streams, Log: s.Log, ReadHigh: last, Commands: s.Commands}
}

func byPosition(e Entry, p int64) int {
	switch {
	case e.Position < p:
		return -1
	case e.Position > p:
		return 1
	}
	return 0
}

func mergeLog(log, entries []Entry) []Entry {
	merged := make([]Entry, 0, len(log)+len(entries))
	merged = append(merged, log...)
	merged = append(merged, entries...)
	slices.SortFunc(merged, func(a, b Entry) int { return byPosition(a, b.Position) })
	return merged
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func equal(a, b State) bool {
	if a.ReadHigh != b.ReadHigh || !slices.Equal(a.Log, b.Log) ||
		len(a.Streams) != len(b.Streams) || len(a.Commands) != len(b.Commands) {
		return false
	}
	for k, v := range a.Streams {
		if w, ok := b.Streams[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	for k, v := range a.Commands {
		if w, ok := b.Commands[k]; !ok || v.Previous != w.Previous || v.Version != w.Version || v.Position != w.Position {
			return false
		}
	}
	return true
}

// hash covers what equal compares first; equal states hash alike.
func hash(s State) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d/%d", s.ReadHigh, len(s.Log), len(s.Streams), len(s.Commands))
	for _, e := range s.Log {
		fmt.Fprintf(h, ",%d", e.Position)
	}
	return h.Sum64()
}

func describe(in Input, out Output) string {
	switch in.Op {
	case "append":
		expected := "any"
		if in.Expected != nil {
			expected = fmt.Sprint(*in.Expected)
		}
		result := fmt.Sprintf("%s %d→%d @%d", out.Status, out.Previous, out.Version, out.Position)
		if out.Status == "conflict" {
			result = fmt.Sprintf("conflict (at %d)", out.Version)
		}
		return fmt.Sprintf("append(%s, expect %s, %d events) → %s", in.Stream, expected, len(in.Events), result)
	case "read_stream":
		return fmt.Sprintf("read_stream(%s) → %d events", in.Stream, len(out.Events))
	default:
		positions := make([]string, 0, len(out.Log))
		for _, e := range out.Log {
			positions = append(positions, fmt.Sprint(e.Position))
		}
		return fmt.Sprintf("read_all(after %d) → [%s]", in.After, strings.Join(positions, " "))
	}
}
