//! Applying a batch of events to the documents of a projection, in two steps that
//! adapters can drive themselves: plan (decode, route), then apply to the stored
//! documents.

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::event::{Envelope, Position, RecordedEvent};
use crate::ports::{DocumentChange, ReadModelReader, StoredDocument};

use super::Projection;

/// Whether an event is applied to a document whose position is at or past its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Guard {
    /// Skip it: the document already includes it. What a runner does, so that
    /// replays after a crash are no-ops.
    SkipApplied,
    /// Apply every event. For inline projections, which apply each event exactly
    /// once, in the transaction that appends it, in an order positions need not
    /// follow.
    ApplyAll,
}

/// A batch of events decoded and routed by a projection: the documents it touches,
/// ready to be applied once they are loaded.
#[derive(Debug)]
pub struct ProjectionBatch<E> {
    routed: Vec<(Envelope<E>, Vec<String>)>,
    ids: Vec<String>,
}

struct Working<D> {
    document: Option<D>,
    position: Position,
    dirty: bool,
}

impl<E: crate::event::Event> ProjectionBatch<E> {
    /// Decodes the events of `batch` that `projection` reads and asks it which
    /// documents each changes.
    ///
    /// # Errors
    /// [`Error::Codec`] (naming the event's stream, version and position) if an event
    /// of a type the projection reads cannot be decoded.
    pub fn plan<P: Projection<Event = E>>(
        projection: &P,
        batch: &[RecordedEvent],
    ) -> Result<Self, Error> {
        let mut routed = Vec::new();
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for recorded in batch {
            let Some(event) = recorded.decode_if::<P::Event>()? else {
                continue;
            };
            let targets = projection.document_ids(&event);
            for id in &targets {
                if seen.insert(id.clone()) {
                    ids.push(id.clone());
                }
            }
            routed.push((event, targets));
        }
        Ok(Self { routed, ids })
    }

    /// The ids of the documents the batch changes, each once, in first-use order.
    pub fn document_ids(&self) -> &[String] {
        &self.ids
    }

    /// Whether the batch changes no document.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Applies the batch to `stored` (the documents among
    /// [`document_ids`](Self::document_ids) that exist, tombstones as `Null`), and
    /// returns the changes to write. `name` names the read model in errors.
    ///
    /// # Errors
    /// [`Error::Codec`] if a stored document cannot be decoded or a new one encoded.
    pub fn apply<P: Projection<Event = E>>(
        self,
        projection: &P,
        name: &str,
        stored: HashMap<String, StoredDocument>,
        guard: Guard,
    ) -> Result<Vec<DocumentChange>, Error> {
        let mut working: HashMap<String, Working<P::Document>> =
            HashMap::with_capacity(self.ids.len());
        for (id, doc) in stored {
            let document = if doc.value.is_null() {
                None
            } else {
                Some(
                    serde_json::from_value(doc.value)
                        .map_err(|e| Error::codec("document", e).in_projection(name, Some(&id)))?,
                )
            };
            working.insert(
                id,
                Working {
                    document,
                    position: doc.position,
                    dirty: false,
                },
            );
        }
        for (event, ids) in &self.routed {
            for id in ids {
                let entry = working.entry(id.clone()).or_insert(Working {
                    document: None,
                    position: Position::START,
                    dirty: false,
                });
                if guard == Guard::SkipApplied && entry.position >= event.position {
                    continue;
                }
                projection.apply(id, &mut entry.document, event);
                entry.position = entry.position.max(event.position);
                entry.dirty = true;
            }
        }
        let mut changes = Vec::with_capacity(self.ids.len());
        for id in self.ids {
            let Some(entry) = working.remove(&id) else {
                continue;
            };
            if !entry.dirty {
                continue;
            }
            changes.push(match entry.document {
                Some(document) => DocumentChange::Put {
                    value: serde_json::to_value(&document)
                        .map_err(|e| Error::codec("document", e).in_projection(name, Some(&id)))?,
                    id,
                    position: entry.position,
                },
                None => DocumentChange::Delete {
                    id,
                    position: entry.position,
                },
            });
        }
        Ok(changes)
    }
}

/// Applies `batch` to the documents of `projection` stored under `name`, and returns
/// the changes to commit. An event is applied to a document only if the document's
/// stored position is before the event's (the guard that makes replays no-ops).
pub(crate) async fn apply_batch<P, S>(
    projection: &P,
    store: &S,
    name: &str,
    batch: &[RecordedEvent],
) -> Result<Vec<DocumentChange>, Error>
where
    P: Projection,
    S: ReadModelReader + ?Sized,
{
    let plan = ProjectionBatch::plan(projection, batch).map_err(|e| e.in_projection(name, None))?;
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let stored = store.get_many(name, plan.document_ids()).await?;
    plan.apply(projection, name, stored, Guard::SkipApplied)
}
