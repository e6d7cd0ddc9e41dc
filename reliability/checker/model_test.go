package main

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func exp(v int64) *int64 { return &v }

func appendOp(client int, call, ret int64, stream string, expected *int64, events []string, out Output) Operation {
	return Operation{Client: client, Call: call, Return: ret,
		Input: Input{Op: "append", Stream: stream, Expected: expected, Events: events}, Output: out}
}

func ok(prev, version, position int64) Output {
	return Output{Status: "ok", Previous: prev, Version: version, Position: position}
}

func readAll(client int, call, ret int64, after int64, log ...Entry) Operation {
	return Operation{Client: client, Call: call, Return: ret,
		Input: Input{Op: "read_all", After: after, Limit: 100}, Output: Output{Log: log}}
}

func readStream(client int, call, ret int64, stream string, events ...string) Operation {
	return Operation{Client: client, Call: call, Return: ret,
		Input: Input{Op: "read_stream", Stream: stream}, Output: Output{Events: events}}
}

func check(t *testing.T, name string, want porcupine.CheckResult, ops ...Operation) {
	t.Helper()
	for _, m := range []struct {
		name  string
		model porcupine.Model
	}{{"whole", Model}, {"split", SplitModel}} {
		got := porcupine.CheckOperations(m.model, History{Operations: ops}.Porcupine())
		if (want == porcupine.Ok) != got {
			t.Errorf("%s (%s): linearizable = %v, want %s", name, m.name, got, want)
		}
	}
}

func TestLegalHistories(t *testing.T) {
	check(t, "sequential appends and reads", porcupine.Ok,
		appendOp(0, 0, 1, "s", exp(0), []string{"a", "b"}, ok(0, 2, 11)),
		appendOp(0, 2, 3, "s", exp(2), []string{"c"}, ok(2, 3, 20)),
		readStream(0, 4, 5, "s", "a", "b", "c"),
		Operation{Client: 1, Call: 4, Return: 5, Input: Input{Op: "read_stream", Stream: "s", After: 2}, Output: Output{Events: []string{"c"}}},
		readAll(0, 6, 7, 0, Entry{10, "a"}, Entry{11, "b"}, Entry{20, "c"}),
	)
	check(t, "concurrent writers on one version: one wins, one conflicts", porcupine.Ok,
		appendOp(0, 0, 10, "s", exp(0), []string{"a"}, ok(0, 1, 5)),
		appendOp(1, 1, 9, "s", exp(0), []string{"b"}, Output{Status: "conflict", Version: 1}),
	)
	check(t, "a log read may stop short of an event not yet final", porcupine.Ok,
		appendOp(0, 0, 1, "s", nil, []string{"a"}, ok(0, 1, 5)),
		appendOp(1, 2, 3, "t", nil, []string{"b"}, ok(0, 1, 9)),
		readAll(2, 4, 5, 0, Entry{5, "a"}),
	)
	check(t, "a lower position may commit later if no reader went past it", porcupine.Ok,
		appendOp(0, 0, 1, "s", nil, []string{"a"}, ok(0, 1, 9)),
		readAll(2, 2, 3, 0),
		appendOp(1, 4, 5, "t", nil, []string{"b"}, ok(0, 1, 5)),
		readAll(2, 6, 7, 0, Entry{5, "b"}, Entry{9, "a"}),
	)
	dup := Input{Op: "append", Stream: "s", Events: []string{"a"}, Command: "c1"}
	check(t, "a command handled twice answers the first result", porcupine.Ok,
		Operation{Client: 0, Call: 0, Return: 1, Input: dup, Output: ok(0, 1, 4)},
		Operation{Client: 1, Call: 2, Return: 3, Input: Input{Op: "append", Stream: "s", Events: []string{"x"}, Command: "c1"},
			Output: Output{Status: "duplicate", Previous: 0, Version: 1, Position: 4}},
		readStream(0, 4, 5, "s", "a"),
	)
}

func TestIllegalHistories(t *testing.T) {
	check(t, "two writers both win the same version", porcupine.Illegal,
		appendOp(0, 0, 10, "s", exp(0), []string{"a"}, ok(0, 1, 5)),
		appendOp(1, 1, 9, "s", exp(0), []string{"b"}, ok(0, 1, 6)),
	)
	check(t, "an acknowledged append is lost", porcupine.Illegal,
		appendOp(0, 0, 1, "s", nil, []string{"a"}, ok(0, 1, 5)),
		readStream(1, 2, 3, "s"),
	)
	check(t, "a reader went past a position that is filled later (a skip)", porcupine.Illegal,
		appendOp(0, 0, 1, "s", nil, []string{"a"}, ok(0, 1, 9)),
		readAll(2, 2, 3, 0, Entry{9, "a"}),
		appendOp(1, 4, 5, "t", nil, []string{"b"}, ok(0, 1, 5)),
	)
	check(t, "a log read with a hole", porcupine.Illegal,
		appendOp(0, 0, 1, "s", nil, []string{"a", "b", "c"}, ok(0, 3, 3)),
		readAll(1, 2, 3, 0, Entry{1, "a"}, Entry{3, "c"}),
	)
	check(t, "a conflict reports the wrong version", porcupine.Illegal,
		appendOp(0, 0, 1, "s", exp(0), []string{"a"}, ok(0, 1, 5)),
		appendOp(0, 2, 3, "s", exp(0), []string{"b"}, Output{Status: "conflict", Version: 0}),
	)
	check(t, "a command handled twice appends twice", porcupine.Illegal,
		Operation{Client: 0, Call: 0, Return: 1, Input: Input{Op: "append", Stream: "s", Events: []string{"a"}, Command: "c1"}, Output: ok(0, 1, 4)},
		Operation{Client: 1, Call: 2, Return: 3, Input: Input{Op: "append", Stream: "s", Events: []string{"b"}, Command: "c1"}, Output: ok(1, 2, 6)},
	)
	check(t, "a stream read from a version misses an event", porcupine.Illegal,
		appendOp(0, 0, 1, "s", nil, []string{"a", "b", "c"}, ok(0, 3, 3)),
		Operation{Client: 1, Call: 2, Return: 3, Input: Input{Op: "read_stream", Stream: "s", After: 1}, Output: Output{Events: []string{"c"}}},
	)
	check(t, "an event that was never appended is read", porcupine.Illegal,
		readAll(0, 0, 1, 0, Entry{1, "ghost"}),
	)
}
