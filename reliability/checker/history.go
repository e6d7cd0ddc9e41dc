package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/anishathalye/porcupine"
)

// History is what a recorder writes: every operation of every client, with its
// invocation and completion times (nanoseconds from the start of the run).
type History struct {
	Operations []Operation `json:"operations"`
}

// Operation is one call on the event store and what it returned.
type Operation struct {
	Client int    `json:"client"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Input  Input  `json:"input"`
	Output Output `json:"output"`
}

// Input is the call: an append, a read of one stream, or a read of the log.
type Input struct {
	// Op is "append", "read_stream" or "read_all".
	Op     string `json:"op"`
	Stream string `json:"stream,omitempty"`
	// Expected is the version the append expects, absent for any version.
	Expected *int64 `json:"expected,omitempty"`
	// Events are the ids of the appended events, in order.
	Events []string `json:"events,omitempty"`
	// Command is the append's command id, if any.
	Command string `json:"command,omitempty"`
	// After is where a read starts (exclusive): a position in the log, a version
	// in a stream. Limit bounds a read of the log.
	After int64 `json:"after,omitempty"`
	Limit int   `json:"limit,omitempty"`
	// Part is set by the split check (split.go): the part of the store this
	// operation is checked against, "stream" or "log"; empty for the whole store.
	Part string `json:"-"`
}

// Output is what the call returned.
type Output struct {
	// Status of an append: "ok", "conflict" or "duplicate" (the command was
	// handled before; the versions and position are the earlier result's).
	Status   string `json:"status,omitempty"`
	Previous int64  `json:"previous"`
	// Version after the append, or the actual version of a conflict.
	Version int64 `json:"version"`
	// Position of the last appended event (0 if none).
	Position int64 `json:"position"`
	// Events of a stream, in version order (read_stream).
	Events []string `json:"events,omitempty"`
	// Log read (read_all), in the order returned.
	Log []Entry `json:"log,omitempty"`
}

// Entry is an event of the log.
type Entry struct {
	Position int64  `json:"position"`
	Event    string `json:"event"`
}

// Read decodes a history and checks its shape (what the model cannot).
func Read(r io.Reader) (History, error) {
	var h History
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("reading the history: %w", err)
	}
	for i, op := range h.Operations {
		switch op.Input.Op {
		case "append", "read_stream", "read_all":
		default:
			return h, fmt.Errorf("operation %d: unknown op %q", i, op.Input.Op)
		}
		if op.Return < op.Call {
			return h, fmt.Errorf("operation %d returns (%d) before it is called (%d)", i, op.Return, op.Call)
		}
	}
	return h, nil
}

// Porcupine turns the history into Porcupine's operations. Log reads that returned
// nothing are left out: every state of the model accepts them and none changes, so
// they cannot make a history illegal, while each one, concurrent with everything,
// doubles the orders the checker must consider.
func (h History) Porcupine() []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	for _, op := range h.Operations {
		if op.Input.Op == "read_all" && len(op.Output.Log) == 0 {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.Client,
			Input:    op.Input,
			Call:     op.Call,
			Output:   op.Output,
			Return:   op.Return,
		})
	}
	return ops
}
