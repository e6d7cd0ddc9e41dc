//! The cross-partition merge: events from many partitions put back in global
//! position order, released only up to what every partition has vouched for.
//!
//! A lane (a partition) has a *frontier*: the highest position it has vouched for,
//! so that no event at or below it comes later on that lane. With the relay's topics
//! each lane is in position order (the relay produces in position order), so an
//! event vouches for its own position, and so does a watermark record (the relay
//! ends every transaction with one on every partition it knows). With Debezium's
//! topic, events come in commit order, which positions do not follow: only the
//! heartbeat's safe position vouches. Every event at or below the lowest frontier of
//! all lanes has then been received, so those events can be released in position
//! order: none can arrive later.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cqrs_core::{Position, RecordedEvent};

/// A partition of a topic.
pub(crate) type Lane = (String, i32);

#[derive(Debug, Default)]
struct LaneState {
    /// The highest position this lane has vouched for, if any yet.
    frontier: Option<Position>,
    /// The offsets of its events received but not released.
    held: BTreeSet<i64>,
    /// The offset after the last record received (or the start offset).
    next_offset: i64,
}

/// The merge of all lanes of one subscription.
#[derive(Debug)]
pub(crate) struct Merge {
    lanes: HashMap<Lane, LaneState>,
    held: BTreeMap<Position, (Lane, i64, RecordedEvent)>,
    /// Whether an event vouches for its own position (lanes in position order).
    events_vouch: bool,
    /// Events at or before this are dropped (the consumer's checkpoint, then the last
    /// event released).
    released: Position,
}

impl Merge {
    /// A merge releasing only events after `after`; `events_vouch` if each lane is
    /// in position order.
    pub(crate) fn new(after: Position, events_vouch: bool) -> Self {
        Self {
            lanes: HashMap::new(),
            held: BTreeMap::new(),
            events_vouch,
            released: after,
        }
    }

    /// Adds a lane read from `start_offset` on.
    pub(crate) fn add_lane(&mut self, lane: Lane, start_offset: i64) {
        self.lanes.entry(lane).or_insert(LaneState {
            next_offset: start_offset,
            ..LaneState::default()
        });
    }

    /// The lanes that have vouched for nothing yet, with their next offsets.
    pub(crate) fn silent_lanes(&self) -> Vec<(Lane, i64)> {
        self.lanes
            .iter()
            .filter(|(_, state)| state.frontier.is_none())
            .map(|(lane, state)| (lane.clone(), state.next_offset))
            .collect()
    }

    /// The lowest frontier of the lanes that have one.
    pub(crate) fn lowest_frontier(&self) -> Option<Position> {
        self.lanes.values().filter_map(|state| state.frontier).min()
    }

    /// Records that `lane` holds nothing at or below `position` beyond what it
    /// delivered (it was found at its end after that position was vouched for).
    pub(crate) fn vouch(&mut self, lane: &Lane, position: Position) {
        if let Some(state) = self.lanes.get_mut(lane) {
            state.frontier = Some(state.frontier.map_or(position, |f| f.max(position)));
        }
    }

    /// A watermark record at `offset` of `lane`: the lane has delivered every event
    /// up to `position`.
    pub(crate) fn watermark(&mut self, lane: &Lane, offset: i64, position: Position) {
        self.received(lane, offset);
        self.vouch(lane, position);
    }

    /// A record at `offset` of `lane` that is neither an event nor a watermark (sent
    /// to the dead letters): only moves the lane's offset on.
    pub(crate) fn skipped(&mut self, lane: &Lane, offset: i64) {
        self.received(lane, offset);
    }

    /// An event at `offset` of `lane`.
    pub(crate) fn event(&mut self, lane: &Lane, offset: i64, event: RecordedEvent) {
        self.received(lane, offset);
        let position = event.position;
        if self.events_vouch {
            self.vouch(lane, position);
        }
        if position <= self.released || self.held.contains_key(&position) {
            return; // applied before, or a copy
        }
        if let Some(state) = self.lanes.get_mut(lane) {
            state.held.insert(offset);
        }
        self.held.insert(position, (lane.clone(), offset, event));
    }

    fn received(&mut self, lane: &Lane, offset: i64) {
        if let Some(state) = self.lanes.get_mut(lane) {
            state.next_offset = state.next_offset.max(offset + 1);
        }
    }

    /// Whether events are held, waiting for the other lanes.
    pub(crate) fn holds_events(&self) -> bool {
        !self.held.is_empty()
    }

    /// Releases, in position order, up to `limit` held events at or below `bound`.
    pub(crate) fn release(&mut self, bound: Position, limit: usize) -> Vec<RecordedEvent> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(entry) = self.held.first_entry() else {
                break;
            };
            if *entry.key() > bound {
                break;
            }
            let (lane, offset, event) = entry.remove();
            if let Some(state) = self.lanes.get_mut(&lane) {
                state.held.remove(&offset);
            }
            self.released = event.position;
            out.push(event);
        }
        out
    }

    /// Where each lane may be committed: the offset of its oldest held event, or,
    /// holding none, after its last record, or `consumed(lane)` if further (the
    /// client's position, which also passes the transaction markers that are never
    /// delivered). Call once everything released has been applied.
    pub(crate) fn committable(&self, consumed: impl Fn(&Lane) -> Option<i64>) -> Vec<(Lane, i64)> {
        self.lanes
            .iter()
            .map(|(lane, state)| {
                let offset = match state.held.first() {
                    Some(held) => *held,
                    None => consumed(lane).map_or(state.next_offset, |c| c.max(state.next_offset)),
                };
                (lane.clone(), offset)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cqrs_core::{Metadata, RawEvent, StreamId, Version};

    use super::*;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream_id: StreamId::new("s-1"),
            version: Version(position),
            position: Position(position),
            recorded_at: chrono::Utc::now(),
            metadata: Metadata::new(),
            event: RawEvent {
                event_type: "t".into(),
                schema_version: 1,
                payload: serde_json::Value::Null,
            },
        }
    }

    fn lane(p: i32) -> Lane {
        ("t".into(), p)
    }

    fn positions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position.0).collect()
    }

    #[test]
    fn an_event_waits_until_every_lane_has_vouched_past_it() {
        let mut merge = Merge::new(Position::START, true);
        merge.add_lane(lane(0), 0);
        merge.add_lane(lane(1), 0);
        merge.event(&lane(1), 0, event(2));
        // Lane 0 has said nothing: position 1 may still come from it.
        assert_eq!(merge.silent_lanes().len(), 1);
        merge.event(&lane(0), 0, event(1));
        let bound = merge.lowest_frontier().unwrap();
        assert_eq!(bound, Position(1));
        assert_eq!(positions(&merge.release(bound, 10)), [1]);
        merge.watermark(&lane(0), 1, Position(2));
        assert_eq!(
            positions(&merge.release(merge.lowest_frontier().unwrap(), 10)),
            [2]
        );
        assert!(!merge.holds_events());
    }

    #[test]
    fn events_at_or_before_the_checkpoint_and_copies_are_dropped() {
        let mut merge = Merge::new(Position(5), true);
        merge.add_lane(lane(0), 0);
        merge.event(&lane(0), 0, event(4));
        merge.event(&lane(0), 1, event(6));
        merge.event(&lane(0), 2, event(6));
        assert_eq!(positions(&merge.release(Position(10), 10)), [6]);
    }

    #[test]
    fn release_respects_the_limit_and_the_order() {
        let mut merge = Merge::new(Position::START, true);
        merge.add_lane(lane(0), 0);
        merge.add_lane(lane(1), 0);
        for (i, p) in [1, 3, 5].into_iter().enumerate() {
            merge.event(&lane(0), i as i64, event(p));
        }
        for (i, p) in [2, 4, 6].into_iter().enumerate() {
            merge.event(&lane(1), i as i64, event(p));
        }
        assert_eq!(positions(&merge.release(Position(5), 3)), [1, 2, 3]);
        assert_eq!(positions(&merge.release(Position(5), 3)), [4, 5]);
    }

    #[test]
    fn committable_offsets_stop_at_the_oldest_held_event() {
        let mut merge = Merge::new(Position::START, true);
        merge.add_lane(lane(0), 10);
        merge.add_lane(lane(1), 20);
        merge.event(&lane(0), 10, event(1));
        merge.event(&lane(0), 11, event(3));
        merge.watermark(&lane(1), 20, Position(2));
        assert_eq!(positions(&merge.release(Position(2), 10)), [1]);
        let mut offsets = merge.committable(|_| None);
        offsets.sort();
        assert_eq!(offsets, [(lane(0), 11), (lane(1), 21)]);
        // The client's position counts only for a lane holding nothing.
        let mut offsets = merge.committable(|_| Some(30));
        offsets.sort();
        assert_eq!(offsets, [(lane(0), 11), (lane(1), 30)]);
    }

    #[test]
    fn in_commit_order_only_watermarks_vouch_and_events_are_reordered() {
        let mut merge = Merge::new(Position::START, false);
        merge.add_lane(lane(0), 0);
        merge.event(&lane(0), 0, event(5)); // committed first, written second
        assert_eq!(merge.lowest_frontier(), None, "an event does not vouch");
        merge.event(&lane(0), 1, event(3));
        merge.watermark(&lane(0), 2, Position(4));
        assert_eq!(
            positions(&merge.release(merge.lowest_frontier().unwrap(), 10)),
            [3]
        );
        // Offset 0 (position 5) is still held: the lane may not be committed past it.
        assert_eq!(merge.committable(|_| None), [(lane(0), 0)]);
        merge.watermark(&lane(0), 3, Position(9));
        assert_eq!(
            positions(&merge.release(merge.lowest_frontier().unwrap(), 10)),
            [5]
        );
        assert_eq!(merge.committable(|_| None), [(lane(0), 4)]);
    }

    #[test]
    fn a_silent_lane_found_at_its_end_is_vouched_for() {
        let mut merge = Merge::new(Position::START, true);
        merge.add_lane(lane(0), 0);
        merge.add_lane(lane(1), 7);
        merge.event(&lane(0), 0, event(1));
        merge.vouch(&lane(1), Position(1));
        assert!(merge.silent_lanes().is_empty());
        assert_eq!(
            positions(&merge.release(merge.lowest_frontier().unwrap(), 10)),
            [1]
        );
        assert_eq!(merge.committable(|_| None).len(), 2);
    }
}
